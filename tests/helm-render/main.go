// helm-render: renders a Helm chart the way `helm template --include-crds`
// does, for tests on a machine without Helm: Go's text/template with the sprig
// function library (Debian's golang-github-masterminds-sprig-dev, the library
// Helm itself uses) plus Helm's own functions (include, tpl, required, toYaml,
// fromYaml, toJson, fromJson) and built-in objects (.Values, .Chart, .Release,
// .Files, .Capabilities). Values: the chart's values.yaml, then each -f file
// merged over it. Missing keys are errors (as `helm lint --strict`).
//
//	helm-render [-f values.yaml]... [-name RELEASE] [-namespace NS] CHART_DIR
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// Files is .Files: the chart's non-template files.
type Files struct{ root string }

func (f Files) Get(name string) string {
	b, err := os.ReadFile(filepath.Join(f.root, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func (f Files) Glob(pattern string) map[string]string {
	out := map[string]string{}
	matches, _ := filepath.Glob(filepath.Join(f.root, pattern))
	for _, m := range matches {
		rel, _ := filepath.Rel(f.root, m)
		out[rel] = f.Get(rel)
	}
	return out
}

// yaml.v3 decodes maps as map[string]interface{}; templates want the same.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []interface{}:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	}
	return v
}

func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func loadYAML(path string) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return normalize(out).(map[string]interface{}), nil
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func main() {
	var extra valueFiles
	flag.Var(&extra, "f", "values file merged over the chart's values.yaml (repeatable)")
	release := flag.String("name", "backstop", "release name")
	namespace := flag.String("namespace", "backstop-system", "release namespace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-f values.yaml]... [-name R] [-namespace NS] CHART_DIR")
		os.Exit(2)
	}
	chartDir := flag.Arg(0)
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}

	chartMeta, err := loadYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		fail(err)
	}
	values, err := loadYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		fail(err)
	}
	for _, f := range extra {
		over, err := loadYAML(f)
		if err != nil {
			fail(err)
		}
		merge(values, over)
	}
	// .Chart fields as Helm capitalizes them.
	chart := map[string]interface{}{}
	for k, v := range chartMeta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   chart,
		"Release": map[string]interface{}{"Name": *release, "Namespace": *namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Files":   Files{root: chartDir},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.32.0", "Major": "1", "Minor": "32"},
		},
		"Template": map[string]interface{}{"BasePath": "backstop/templates"},
	}

	root := template.New("chart").Option("missingkey=error")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		out := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &out); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return normalize(out).(map[string]interface{})
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	funcs["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", message)
		}
		return v, nil
	}
	root.Funcs(funcs)

	templates, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(templates)
	for _, path := range templates {
		b, err := os.ReadFile(path)
		if err != nil {
			fail(err)
		}
		if _, err := root.New("backstop/templates/" + filepath.Base(path)).Parse(string(b)); err != nil {
			fail(err)
		}
	}

	var out strings.Builder
	crds, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	sort.Strings(crds)
	for _, path := range crds {
		b, _ := os.ReadFile(path)
		out.WriteString("---\n# Source: backstop/crds/" + filepath.Base(path) + "\n" + string(b) + "\n")
	}
	for _, path := range templates {
		base := filepath.Base(path)
		if strings.HasPrefix(base, "_") || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, "backstop/templates/"+base, top); err != nil {
			fail(err)
		}
		for _, doc := range strings.Split(buf.String(), "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
				continue
			}
			// Every rendered document must be YAML.
			var check interface{}
			if err := yaml.Unmarshal([]byte(doc), &check); err != nil {
				fail(fmt.Errorf("templates/%s renders invalid YAML: %w\n%s", base, err, doc))
			}
			out.WriteString("---\n# Source: backstop/templates/" + base + "\n" + strings.TrimPrefix(strings.TrimLeft(doc, "\n"), "---\n") + "\n")
		}
	}
	fmt.Print(out.String())
}

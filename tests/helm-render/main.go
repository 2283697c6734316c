// helm-render: renders a Helm chart the way `helm template --include-crds`
// does, for tests on a machine without Helm: Go's text/template with the sprig
// function library (Debian's golang-github-masterminds-sprig-dev, the library
// Helm itself uses) plus Helm's own functions (include, tpl, required, toYaml,
// fromYaml, toJson, fromJson) and built-in objects (.Values, .Chart, .Release,
// .Files, .Capabilities). Missing keys are errors (as `helm lint --strict`).
//
// Values as Helm 3 makes them: the chart's values.yaml, then each -f file
// coalesced over it (a null deletes the key), read as sigs.k8s.io/yaml reads
// them (YAML 1.1 through gopkg.in/yaml.v2, then JSON: every number a float64),
// and validated against the chart's values.schema.json with the validator
// Helm 3 uses (Debian's golang-github-xeipuuv-gojsonschema-dev) before
// anything renders: a violation refuses the render with Helm's message, one
// "- path: description" line per error.
//
// .Capabilities.APIVersions is the built-in group/versions of Kubernetes 1.32
// plus each -api-versions (as `helm template --api-versions`), with Helm's
// Has. templates/NOTES.txt is rendered too (an error in it fails the render,
// as it fails `helm install`), and written to the -notes file.
//
//	helm-render [-f values.yaml]... [-api-versions G/V]... [-notes FILE]
//	            [-name RELEASE] [-namespace NS] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/xeipuuv/gojsonschema"
	yaml2 "gopkg.in/yaml.v2"
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

// yaml.v2 decodes maps as map[interface{}]interface{}; JSON and templates want string keys.
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

// coalesce merges src over dst as Helm's CoalesceValues does for user values:
// maps merge key by key, anything else replaces, and a null deletes the key.
func coalesce(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				coalesce(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// helmYAML reads YAML as sigs.k8s.io/yaml (Helm's reader) does: YAML 1.1
// (gopkg.in/yaml.v2: yes/no/on/off are booleans), then through JSON, so that
// keys are strings and every number is a float64.
func helmYAML(b []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml2.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	j, err := json.Marshal(normalize(raw))
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if string(j) == "null" {
		return out, nil
	}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func loadYAML(path string) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := helmYAML(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// validateValues is Helm 3's ValidateAgainstSchema for a chart without
// dependencies: the coalesced values as JSON against values.schema.json, and
// Helm's error text.
func validateValues(chartName, schemaPath string, values map[string]interface{}) error {
	schema, err := os.ReadFile(schemaPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	valuesJSON, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(valuesJSON))
	if err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	if result.Valid() {
		return nil
	}
	var sb strings.Builder
	for _, desc := range result.Errors() {
		sb.WriteString(fmt.Sprintf("- %s\n", desc))
	}
	return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s", chartName, sb.String())
}

// VersionSet is .Capabilities.APIVersions, with Helm's Has.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// The group/versions a Kubernetes 1.32 API server serves by default (GA and
// beta enabled by default), as Helm's DefaultVersionSet lists them for
// `helm template` without a cluster.
var builtinAPIVersions = []string{
	"v1",
	"admissionregistration.k8s.io/v1",
	"apiextensions.k8s.io/v1",
	"apiregistration.k8s.io/v1",
	"apps/v1",
	"authentication.k8s.io/v1",
	"authorization.k8s.io/v1",
	"autoscaling/v1",
	"autoscaling/v2",
	"batch/v1",
	"certificates.k8s.io/v1",
	"coordination.k8s.io/v1",
	"discovery.k8s.io/v1",
	"events.k8s.io/v1",
	"flowcontrol.apiserver.k8s.io/v1",
	"flowcontrol.apiserver.k8s.io/v1beta3",
	"networking.k8s.io/v1",
	"node.k8s.io/v1",
	"policy/v1",
	"rbac.authorization.k8s.io/v1",
	"scheduling.k8s.io/v1",
	"storage.k8s.io/v1",
}

// Capabilities is .Capabilities.
type Capabilities struct {
	APIVersions VersionSet
	KubeVersion KubeVersion
}

type KubeVersion struct{ Version, Major, Minor string }

func (k KubeVersion) String() string     { return k.Version }
func (k KubeVersion) GitVersion() string { return k.Version }

// toYAML is Helm's toYaml (sigs.k8s.io/yaml.Marshal): through JSON, then YAML
// with sorted keys; "" on error.
func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var obj interface{}
	if err := yaml2.Unmarshal(j, &obj); err != nil {
		return ""
	}
	b, err := yaml2.Marshal(obj)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func main() {
	var extra, apiVersions valueFiles
	flag.Var(&extra, "f", "values file merged over the chart's values.yaml (repeatable)")
	flag.Var(&apiVersions, "api-versions", "an API group/version the cluster serves beyond the built-in ones, for .Capabilities.APIVersions (repeatable)")
	notesFile := flag.String("notes", "", "write the rendered templates/NOTES.txt here")
	release := flag.String("name", "backstop", "release name")
	namespace := flag.String("namespace", "backstop-system", "release namespace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-f values.yaml]... [-api-versions G/V]... [-notes FILE] [-name R] [-namespace NS] CHART_DIR")
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
		coalesce(values, over)
	}
	if err := validateValues(fmt.Sprint(chartMeta["name"]), filepath.Join(chartDir, "values.schema.json"), values); err != nil {
		fail(err)
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
		"Capabilities": Capabilities{
			APIVersions: append(VersionSet(append([]string{}, builtinAPIVersions...)), apiVersions...),
			KubeVersion: KubeVersion{Version: "v1.32.0", Major: "1", Minor: "32"},
		},
		"Template": map[string]interface{}{"BasePath": "backstop/templates"},
	}

	root := template.New("chart").Option("missingkey=error")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		out, err := helmYAML([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return out
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
	if _, err := os.Stat(filepath.Join(chartDir, "templates", "NOTES.txt")); err == nil {
		var notes bytes.Buffer
		if err := root.ExecuteTemplate(&notes, "backstop/templates/NOTES.txt", top); err != nil {
			fail(err)
		}
		if *notesFile != "" {
			if err := os.WriteFile(*notesFile, notes.Bytes(), 0o644); err != nil {
				fail(err)
			}
		}
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

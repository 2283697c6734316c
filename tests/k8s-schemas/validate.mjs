// Validates Kubernetes objects (YAML or JSON files; a JSON file may hold an
// array) against the official schemas from kubernetes-models (and
// @kubernetes-models/prometheus-operator for PrometheusRule, ServiceMonitor), and StopMonitors
// against the openAPIV3Schema of the CRD in crds/. Exit 1 with the path of what
// is wrong.
//   node validate.mjs FILE...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import Ajv from "ajv";

const files = process.argv.slice(2);
const objects = [];
for (const file of files) {
  const text = readFileSync(file, "utf8");
  if (file.endsWith(".json")) {
    const parsed = JSON.parse(text);
    for (const o of Array.isArray(parsed) ? parsed : [parsed]) objects.push({ file, o });
  } else {
    for (const doc of parseAllDocuments(text)) {
      const o = doc.toJS();
      if (o !== null && o !== undefined) objects.push({ file, o });  // a document of comments only
    }
  }
}

// The StopMonitor schema, from the CRD among the inputs.
let stopMonitorSchema = null;
for (const { o } of objects) {
  if (o.kind === "CustomResourceDefinition" && o.metadata.name === "stopmonitors.backstop.dev") {
    stopMonitorSchema = o.spec.versions.find((v) => v.name === "v1alpha1").schema.openAPIV3Schema;
  }
}

let failures = 0;
for (const { file, o } of objects) {
  const label = `${file}: ${o.kind}/${o.metadata?.name}`;
  try {
    if (o.apiVersion === "backstop.dev/v1alpha1") {
      if (!stopMonitorSchema) throw new Error("no StopMonitor CRD among the inputs");
      const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
      const schema = JSON.parse(JSON.stringify(stopMonitorSchema));
      schema.properties.metadata = { type: "object" };
      // Unknown fields are errors, as the API server's structural pruning + strict validation make them.
      const closeObjects = (s) => {
        if (s && s.type === "object" && s.properties && !s["x-kubernetes-preserve-unknown-fields"]) {
          s.additionalProperties = false;
          Object.values(s.properties).forEach(closeObjects);
        }
        if (s && s.items) closeObjects(s.items);
      };
      closeObjects(schema);
      schema.properties.apiVersion = { type: "string" };
      schema.properties.kind = { type: "string" };
      if (!ajv.validate(schema, o)) throw new Error(ajv.errorsText(ajv.errors));
    } else {
      const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : [null, o.apiVersion];
      // The Prometheus Operator's kinds come from @kubernetes-models/prometheus-operator.
      const models = group === "monitoring.coreos.com" ? "@kubernetes-models/prometheus-operator" : "kubernetes-models";
      const module = await import(`${models}/${group ? group + "/" : ""}${version}/${o.kind}`);
      new module[o.kind](o).validate();
    }
    console.log(`ok   ${label}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${label}: ${e.message}`);
  }
}
if (objects.length === 0) {
  console.log("no objects given");
  process.exit(1);
}
process.exit(failures === 0 ? 0 : 1);

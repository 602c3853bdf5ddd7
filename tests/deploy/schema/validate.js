// Reads a JSON array of Kubernetes objects on stdin and validates each against its schema
// (kubernetes-models for the core API, @kubernetes-models/cert-manager for cert-manager's).
// Prints one line per object and "N passed, N failed"; exits 1 on any failure.
"use strict";
const fs = require("fs");

const packages = {
  "cert-manager.io": "@kubernetes-models/cert-manager/cert-manager.io",
};

function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const base = packages[group] || (group ? `kubernetes-models/${group}` : "kubernetes-models");
  const module = require(`${base}/${version}/${kind}`);
  return module[kind] || module.default;
}

const objects = JSON.parse(fs.readFileSync(0, "utf8"));
let passed = 0, failed = 0;
for (const object of objects) {
  const what = `${object.apiVersion} ${object.kind} ${object.metadata && object.metadata.name}`;
  try {
    const Model = modelFor(object.apiVersion, object.kind);
    new Model(object).validate();
    console.log(`ok   schema: ${what}`);
    passed++;
  } catch (e) {
    console.log(`FAIL schema: ${what}: ${e.message.split("\n").slice(0, 6).join(" | ")}`);
    failed++;
  }
}
console.log(`schema: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

// Validates rendered Kubernetes objects against the API's JSON schemas (kubernetes-models, and the Prometheus
// Operator's for its kinds): wrong types, missing required fields, bad enum values. Run by build/lint-deploy.sh, which
// installs the packages beside it. Usage: node validate-manifests.mjs FILE.yaml...
import fs from 'node:fs';
import * as yaml from 'js-yaml';

const groups = { '': 'kubernetes-models', 'monitoring.coreos.com': '@kubernetes-models/prometheus-operator' };
let failures = 0, checked = 0;
for (const file of process.argv.slice(2)) {
  for (const object of yaml.loadAll(fs.readFileSync(file, 'utf8'))) {
    if (!object) continue;
    const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
    const pkg = groups[group] ?? 'kubernetes-models';
    const path = `${pkg}/${group === '' ? '' : group + '/'}${version}/${object.kind}`;
    const where = `${file}: ${object.kind}/${object.metadata?.name}`;
    let Model;
    try { Model = (await import(path))[object.kind]; }
    catch { console.error(`${where}: no schema for ${object.apiVersion} ${object.kind}`); failures++; continue; }
    try { new Model(object).validate(); checked++; }
    catch (e) { console.error(`${where}: ${e.message}`); failures++; }
  }
}
console.log(`schema: ${checked} objects valid, ${failures} failed`);
process.exit(failures ? 1 : 0);

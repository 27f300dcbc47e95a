// Node.js functions through the unmodified Extra Horizon SDK: a handler zipped in the test and run
// by task, by execute, by schedule, by a document's task action, by a dispatcher and as an API
// function; and the classic Extra Horizon workflow, a function using the official SDK with the
// execution credentials Vigil injected into its environment to move the document that triggered it on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rqlBuilder } from '@extrahorizon/javascript-sdk';
import { finished, until } from './tasks.mjs';
import { adminEmail, adminPassword, host, loggedIn } from './vigil.mjs';
import { zipBase64 } from './zip.mjs';

const suite = path.dirname(fileURLToPath(import.meta.url));

async function nodeFunction(exh, name, files, settings = {}) {
  return exh.tasks.functions.create({
    name,
    code: zipBase64(files),
    entryPoint: 'index.handler',
    runtime: 'nodejs20.x',
    ...settings,
  });
}

/** The tasks of `functionName` whose data has `from`, once there are `count` of them. */
async function tasksFrom(exh, functionName, from, count) {
  const rql = rqlBuilder().eq('functionName', functionName).eq('data.from', from).build();
  return until(`${count} tasks from ${from}`, async () => {
    const tasks = await exh.tasks.findAll({ rql });
    return tasks.length >= count ? tasks : undefined;
  });
}

const ECHO = `
exports.handler = async (event, context) => {
  if (event.requestContext) {
    return { statusCode: 203, headers: { 'x-runtime': 'node' }, body: JSON.stringify({ path: event.rawPath }) };
  }
  console.log('node ran for', event.data.from);
  return { from: event.data.from, request: context.awsRequestId };
};
`;

test('a Node.js function runs by task, execute, schedule, document action, dispatcher and API call', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const created = await nodeFunction(admin, 'sdk-node', { 'index.js': ECHO }, {
    executionOptions: { permissionMode: 'allUsers' },
  });
  assert.equal(created.runtime, 'nodejs20.x');

  const task = await admin.tasks.create({ functionName: 'sdk-node', data: { from: 'task' } });
  assert.equal((await finished(admin, task.id)).status, 'complete');
  const logs = await admin.tasks.logs.find(task.id);
  assert.ok(logs.some((line) => line.message === 'node ran for task'), JSON.stringify(logs));

  const executed = await admin.tasks.functions.execute('sdk-node', { from: 'execute' });
  assert.deepEqual(executed.result, { from: 'execute', request: executed.id });

  const schedule = await admin.tasks.schedules.create({ functionName: 'sdk-node', interval: 1, data: { from: 'schedule' } });
  const scheduled = await tasksFrom(admin, 'sdk-node', 'schedule', 3);
  await admin.tasks.schedules.remove(schedule.id);
  for (const run of scheduled.slice(0, 3)) assert.equal((await finished(admin, run.id)).status, 'complete');

  await admin.data.schemas.create({ name: 'sdk-node-measurements' });
  await admin.data.transitions.updateCreation('sdk-node-measurements', {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'task', functionName: 'sdk-node', data: { from: 'document' } }],
  });
  const document = await admin.data.documents.create('sdk-node-measurements', {});
  const [byDocument] = await tasksFrom(admin, 'sdk-node', 'document', 1);
  assert.equal(byDocument.data.documentId, document.id);
  assert.equal((await finished(admin, byDocument.id)).status, 'complete');

  const dispatcher = await admin.dispatchers.create({
    eventType: 'sdk_node_event',
    actions: [{ type: 'task', functionName: 'sdk-node', data: { from: 'dispatcher' } }],
  });
  const event = await admin.events.create({ type: 'sdk_node_event', content: { n: 1 } });
  const [byDispatcher] = await tasksFrom(admin, 'sdk-node', 'dispatcher', 1);
  assert.equal(byDispatcher.data.event.id, event.id);
  assert.equal((await finished(admin, byDispatcher.id)).status, 'complete');
  await admin.dispatchers.remove(dispatcher.id);

  assert.deepEqual(await admin.tasks.api.get('sdk-node', '/hello/node'), { path: '/hello/node' });
  const raw = await admin.raw.get('/tasks/v1/api/sdk-node/x');
  assert.equal(raw.status, 203);
  assert.equal(raw.headers['x-runtime'], 'node');
});

/** The pinned SDK and its dependencies as files of a function's code (`node_modules/…`). */
function sdkModules() {
  const files = {};
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(c|m)?js$|\.json$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        files[path.relative(suite, full)] = fs.readFileSync(full);
      }
    }
  };
  walk(path.join(suite, 'node_modules'));
  return files;
}

const WORKFLOW = `
const { createOAuth1Client } = require('@extrahorizon/javascript-sdk');

exports.handler = async (task) => {
  const exh = createOAuth1Client({
    host: process.env.API_HOST,
    consumerKey: process.env.API_OAUTH_CONSUMER_KEY,
    consumerSecret: process.env.API_OAUTH_CONSUMER_SECRET,
  });
  await exh.auth.authenticate({ token: process.env.API_OAUTH_TOKEN, tokenSecret: process.env.API_OAUTH_TOKEN_SECRET });
  const { schemaId, documentId } = task.data;
  console.log('reading', schemaId, documentId);
  const document = await exh.data.documents.findById(schemaId, documentId);
  console.log('updating');
  await exh.data.documents.update(schemaId, documentId, { doubled: document.data.value * 2 });
  console.log('transitioning');
  await exh.data.documents.transition(schemaId, documentId, { name: 'analyze' });
  const me = await exh.users.me();
  return { by: me.email };
};
`;

test('a Node.js function uses the official SDK with its injected execution credentials to move its document on', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await nodeFunction(admin, 'sdk-workflow', { 'index.js': WORKFLOW, ...sdkModules() }, { timeLimit: 60 });
  // Vigil makes the execution credentials (a role, a user holding it, an OAuth1 application and
  // token) and injects them as API_HOST and API_OAUTH_*, as the Extra Horizon CLI sets them.
  const { data: granted } = await admin.raw.post('/tasks/v1/functions/sdk-workflow/executionCredentials', {
    permissions: ['VIEW_DOCUMENTS:sdk-workflow-readings', 'UPDATE_DOCUMENTS:sdk-workflow-readings', 'TRANSITION_DOCUMENTS:sdk-workflow-readings:analyze'],
  });
  assert.equal(granted.apiHost, host);
  const { environmentVariables } = await admin.tasks.functions.getByName('sdk-workflow');
  assert.deepEqual(Object.keys(environmentVariables).sort(), [
    'API_HOST', 'API_OAUTH_CONSUMER_KEY', 'API_OAUTH_CONSUMER_SECRET', 'API_OAUTH_TOKEN', 'API_OAUTH_TOKEN_SECRET',
  ]);
  await admin.data.schemas.create({ name: 'sdk-workflow-readings' });
  await admin.data.properties.create('sdk-workflow-readings', { name: 'value', configuration: { type: 'number' } });
  await admin.data.properties.create('sdk-workflow-readings', { name: 'doubled', configuration: { type: 'number' } });
  await admin.data.statuses.create('sdk-workflow-readings', { name: 'analyzed' });
  await admin.data.transitions.updateCreation('sdk-workflow-readings', {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'task', functionName: 'sdk-workflow' }],
  });
  await admin.data.transitions.create('sdk-workflow-readings', {
    name: 'analyze', type: 'manual', fromStatuses: ['new'], toStatus: 'analyzed',
  });

  const document = await admin.data.documents.create('sdk-workflow-readings', { value: 21 });
  const task = await until('the workflow task', () => admin.tasks.findFirst({ rql: '?eq(functionName,sdk-workflow)' }));
  const done = await finished(admin, task.id);
  assert.equal(done.status, 'complete', JSON.stringify([done.error, await admin.tasks.logs.find(task.id)]));
  const analyzed = await admin.data.documents.findById('sdk-workflow-readings', document.id);
  assert.equal(analyzed.status, 'analyzed');
  assert.equal(analyzed.data.doubled, 42);
  // The function acted as its own user, who holds only the function's role.
  const functionUser = await admin.users.findById(granted.userId);
  assert.deepEqual(functionUser.roles.map((role) => role.id), [granted.roleId]);
});

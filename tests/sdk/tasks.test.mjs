// The task service through the unmodified Extra Horizon SDK: a rhai function deployed as a zip,
// run by a task, by direct execution and by a document's task action, retried, stopped at its
// limit, reaching the API through its host calls, replayed by `vigil replay-task`, and the SDK's
// errors for what is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  IllegalStateError,
  LambdaRuntimeError,
  ResourceUnknownError,
  TimeLimitExceedsDirectExecutionMaximumError,
} from '@extrahorizon/javascript-sdk';
import { finished } from './tasks.mjs';
import { adminEmail, adminPassword, loggedIn } from './vigil.mjs';
import { zipBase64 } from './zip.mjs';

async function rhai(exh, name, script, settings = {}) {
  return exh.tasks.functions.create({
    name,
    code: zipBase64({ 'index.rhai': script }),
    entryPoint: 'index.handler',
    runtime: 'rhai',
    ...settings,
  });
}

test('a rhai function runs by task and by execute, with its logs', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const created = await rhai(admin, 'sdk-double', 'fn handler(task) { print(`x is ${task.data.x}`); #{ doubled: task.data.x * 2 } }', {
    description: 'doubles',
    environmentVariables: { MODE: { value: 'test' } },
    executionOptions: { permissionMode: 'permissionRequired' },
  });
  assert.equal(created.name, 'sdk-double');
  assert.equal(created.enabled, true);
  assert.deepEqual(created.environmentVariables, { MODE: { value: 'test' } });
  const details = await admin.tasks.functions.getByName('sdk-double');
  assert.equal(details.timeLimit, 30);
  assert.ok(details.updateTimestamp instanceof Date);
  const { data: functions } = await admin.tasks.functions.find();
  assert.ok(functions.some((f) => f.name === 'sdk-double'));

  const task = await admin.tasks.create({ functionName: 'sdk-double', data: { x: 21 }, tags: ['sdk'] });
  assert.equal(task.status, 'new');
  assert.ok(task.startTimestamp instanceof Date);
  const done = await finished(admin, task.id);
  assert.equal(done.status, 'complete');
  const logs = await admin.tasks.logs.find(task.id);
  assert.equal(logs[0].message, 'x is 21');
  assert.ok(logs[0].timestamp instanceof Date);

  const executed = await admin.tasks.functions.execute('sdk-double', { x: 5 });
  assert.equal(executed.status, 'complete');
  assert.deepEqual(executed.result, { doubled: 10 });

  assert.deepEqual(await admin.tasks.functions.update('sdk-double', { timeLimit: 60 }), { affectedRecords: 1 });
  await assert.rejects(admin.tasks.functions.execute('sdk-double', {}), TimeLimitExceedsDirectExecutionMaximumError);
  assert.deepEqual(await admin.tasks.functions.disable('sdk-double'), { affectedRecords: 1 });
  assert.deepEqual(await admin.tasks.functions.enable('sdk-double'), { affectedRecords: 1 });
  assert.deepEqual(await admin.tasks.functions.remove('sdk-double'), { affectedRecords: 1 });
  await assert.rejects(admin.tasks.functions.getByName('sdk-double'), ResourceUnknownError);
});

test('a failing function is retried, and a failure answers execute with its runtime error', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-flaky', 'fn handler(task) { if task.retryForTaskIds == () { throw #{ name: "CONNECTION_ERROR", message: "down" } } "ok" }', {
    retryPolicy: { enabled: true, errorsToRetry: ['CONNECTION_ERROR'] },
  });
  const task = await admin.tasks.create({ functionName: 'sdk-flaky' });
  const first = await finished(admin, task.id);
  assert.equal(first.status, 'retried');
  assert.deepEqual(first.error, { type: 'runtime', name: 'CONNECTION_ERROR', message: 'down' });
  const retry = await finished(admin, first.retriedByTaskId);
  assert.equal(retry.status, 'complete');
  assert.deepEqual(retry.retryForTaskIds, [task.id]);

  await rhai(admin, 'sdk-broken', 'fn handler(task) { throw #{ name: "TypeError", message: "no" } }');
  await assert.rejects(admin.tasks.functions.execute('sdk-broken', {}), (error) => {
    assert.ok(error instanceof LambdaRuntimeError, error.constructor.name);
    return true;
  });

  await rhai(admin, 'sdk-runaway', 'fn handler(task) { loop { } }', { timeLimit: 3 });
  const runaway = await admin.tasks.create({ functionName: 'sdk-runaway' });
  const stopped = await finished(admin, runaway.id);
  assert.equal(stopped.status, 'failed');
  assert.equal(stopped.error.name, 'TimeLimitExceeded');
});

test('a task waiting for its start is canceled once', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-later', 'fn handler(task) { 1 }');
  const task = await admin.tasks.create({ functionName: 'sdk-later', startTimestamp: new Date('2099-01-01T00:00:00Z') });
  assert.deepEqual(await admin.tasks.cancel(task.id), { affectedRecords: 1 });
  await assert.rejects(admin.tasks.cancel(task.id), IllegalStateError);
  const canceled = await admin.tasks.findById(task.id);
  assert.equal(canceled.status, 'canceled');
});

test('a document task action runs its function', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-analyze', 'fn handler(task) { task.data.documentId }');
  await admin.data.schemas.create({ name: 'sdk-measurements' });
  await admin.data.transitions.updateCreation('sdk-measurements', {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'task', functionName: 'sdk-analyze', data: { kind: 'bp' } }],
  });
  const document = await admin.data.documents.create('sdk-measurements', {});
  const deadline = Date.now() + 60_000;
  let task;
  while (!task) {
    task = await admin.tasks.findFirst({ rql: `?eq(functionName,sdk-analyze)` });
    if (!task) {
      assert.ok(Date.now() < deadline, 'no task was created');
      await new Promise((resolve) => { setTimeout(resolve, 50); });
    }
  }
  assert.equal(task.data.documentId, document.id);
  assert.equal((await finished(admin, task.id)).status, 'complete');
});

test('a schedule runs its function every interval until deleted', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-tick', 'fn handler(task) { task.data.n }');
  const schedule = await admin.tasks.schedules.create({ functionName: 'sdk-tick', interval: 1, data: { n: 7 } });
  assert.equal(schedule.interval, 1);
  assert.ok(schedule.nextTimestamp instanceof Date);
  const deadline = Date.now() + 60_000;
  let tasks = [];
  while (tasks.length < 3) {
    tasks = await admin.tasks.findAll({ rql: '?eq(functionName,sdk-tick)' });
    assert.ok(Date.now() < deadline, `the schedule fired ${tasks.length} times`);
    if (tasks.length < 3) await new Promise((resolve) => { setTimeout(resolve, 100); });
  }
  const slots = new Set(tasks.map((task) => task.startTimestamp.getTime()));
  assert.equal(slots.size, tasks.length, 'a slot fired twice');
  for (const task of tasks) assert.equal((await finished(admin, task.id)).status, 'complete');
  const found = await admin.tasks.schedules.findFirst({ rql: `?eq(id,${schedule.id})` });
  assert.ok(found.nextTimestamp > schedule.nextTimestamp);
  assert.deepEqual(await admin.tasks.schedules.remove(schedule.id), { affectedRecords: 1 });
  await assert.rejects(admin.tasks.schedules.remove(schedule.id), ResourceUnknownError);
});

test('a dispatcher runs a function on a custom event, and on a task_failed event', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-on-event', 'fn handler(task) { task.data.event.content }');
  const dispatcher = await admin.dispatchers.create({
    eventType: 'sdk_measurement_analyzed',
    name: 'sdk dispatcher',
    actions: [{ type: 'task', name: 'run', functionName: 'sdk-on-event', data: { origin: 'dispatcher' } }],
  });
  assert.equal(dispatcher.actions[0].functionName, 'sdk-on-event');
  const event = await admin.events.create({ type: 'sdk_measurement_analyzed', content: { patient_id: 'p1' } });
  const deadline = Date.now() + 60_000;
  let task;
  while (!task) {
    task = await admin.tasks.findFirst({ rql: '?eq(functionName,sdk-on-event)' });
    if (!task) {
      assert.ok(Date.now() < deadline, 'no task was created');
      await new Promise((resolve) => { setTimeout(resolve, 50); });
    }
  }
  assert.equal(task.data.origin, 'dispatcher');
  assert.equal(task.data.event.id, event.id);
  assert.equal((await finished(admin, task.id)).status, 'complete');
  const added = await admin.dispatchers.actions.create(dispatcher.id, { type: 'task', functionName: 'sdk-on-event' });
  assert.deepEqual(await admin.dispatchers.actions.update(dispatcher.id, added.id, { data: { n: 1 } }), { affectedRecords: 1 });
  assert.deepEqual(await admin.dispatchers.actions.remove(dispatcher.id, added.id), { affectedRecords: 1 });
  assert.deepEqual(await admin.dispatchers.update(dispatcher.id, { description: 'described' }), { affectedRecords: 1 });
  assert.equal((await admin.dispatchers.findById(dispatcher.id)).description, 'described');

  // A final failure is a task_failed event, which a dispatcher hands to a second function.
  await rhai(admin, 'sdk-fails', 'fn handler(task) { throw #{ name: "DATABASE_ERROR", message: "gone" } }');
  await rhai(admin, 'sdk-on-failure', 'fn handler(task) { task.data.event.content.functionName }');
  await admin.dispatchers.create({ eventType: 'task_failed', actions: [{ type: 'task', functionName: 'sdk-on-failure' }] });
  const failing = await admin.tasks.create({ functionName: 'sdk-fails' });
  assert.equal((await finished(admin, failing.id)).status, 'failed');
  let handled;
  while (!handled) {
    handled = await admin.tasks.findFirst({ rql: '?eq(functionName,sdk-on-failure)' });
    if (!handled) {
      assert.ok(Date.now() < deadline, 'task_failed was not dispatched');
      await new Promise((resolve) => { setTimeout(resolve, 50); });
    }
  }
  assert.equal(handled.data.event.content.id, failing.id);
  assert.equal(handled.data.event.content.error.name, 'DATABASE_ERROR');
  assert.deepEqual(await admin.dispatchers.remove(dispatcher.id), { affectedRecords: 1 });
});

test('an API function answers a GET with its own status and header', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-api', 'fn handler(request) { #{ statusCode: 202, headers: #{ "x-vigil": "yes" }, body: #{ path: request.rawPath } } }', {
    executionOptions: { permissionMode: 'allUsers' },
  });
  const answer = await admin.tasks.api.get('sdk-api', '/hello/world');
  assert.deepEqual(answer, { path: '/hello/world' });
  const raw = await admin.raw.get('/tasks/v1/api/sdk-api/x');
  assert.equal(raw.status, 202);
  assert.equal(raw.headers['x-vigil'], 'yes');
  const requests = await admin.tasks.apiRequests.find({ rql: '?eq(functionName,sdk-api)' });
  assert.ok(requests.data.length >= 1);
  assert.equal(requests.data[0].statusCode, 202);
});

test('a rhai function given execution credentials creates and transitions documents through the host API', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await admin.data.schemas.create({ name: 'sdk-host-notes' });
  await admin.data.properties.create('sdk-host-notes', { name: 'text', configuration: { type: 'string' } });
  await admin.data.statuses.create('sdk-host-notes', { name: 'filed' });
  await admin.data.transitions.create('sdk-host-notes', { name: 'file', type: 'manual', fromStatuses: ['new'], toStatus: 'filed' });
  await rhai(admin, 'sdk-host', `
    fn handler(task) {
      let note = create_document("sdk-host-notes", #{ text: task.data.text });
      transition_document("sdk-host-notes", note.id, "file");
      let filed = find_documents("sdk-host-notes", "eq(status,filed)");
      #{ id: note.id, filed: filed.len() }
    }`);
  const { data: granted } = await admin.raw.post('/tasks/v1/functions/sdk-host/executionCredentials', {
    permissions: ['CREATE_DOCUMENTS:sdk-host-notes', 'VIEW_DOCUMENTS:sdk-host-notes', 'TRANSITION_DOCUMENTS:sdk-host-notes:file'],
  });
  const executed = await admin.tasks.functions.execute('sdk-host', { text: 'from rhai' });
  assert.equal(executed.status, 'complete', JSON.stringify(executed));
  assert.equal(executed.result.filed, 1);
  const note = await admin.data.documents.findById('sdk-host-notes', executed.result.id);
  assert.equal(note.status, 'filed');
  assert.equal(note.data.text, 'from rhai');
  assert.equal(note.creatorId, granted.userId);
});

test('a finished rhai task replays to the same outcome with vigil replay-task', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await rhai(admin, 'sdk-dice', 'fn handler(task) { let r = random(); print(`rolled at ${now()}`); #{ roll: r, x: task.data.x } }');
  const task = await admin.tasks.create({ functionName: 'sdk-dice', data: { x: 3 } });
  const done = await finished(admin, task.id);
  assert.equal(done.status, 'complete');
  const storage = JSON.parse(process.env.VIGIL_TEST_STORAGE_ARGS);
  const replay = spawnSync(process.env.VIGIL_TEST_BINARY, ['replay-task', ...storage, task.id], { encoding: 'utf8' });
  assert.equal(replay.status, 0, replay.stdout + replay.stderr);
  assert.match(replay.stdout, /the replay reaches the same outcome/);
  assert.match(replay.stdout, /"x":3/);
});

// The event service through the unmodified Extra Horizon SDK: a subscription (the subscribing
// service reached at its URL, here a server in this test) sent the custom events of its type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { rqlBuilder } from '@extrahorizon/javascript-sdk';
import { until } from './tasks.mjs';
import { adminEmail, adminPassword, loggedIn } from './vigil.mjs';

test('a subscribed service is sent the events of its types', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const received = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      received.push(JSON.parse(body));
      response.writeHead(204).end();
    });
  });
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  try {
    const url = `http://127.0.0.1:${server.address().port}/events`;
    const subscription = await admin.events.subscriptions.create({
      service: { name: url, version: { major: 1, minor: 0, patch: 0 } },
      eventTypes: ['sdk_reading_taken'],
      retriable: true,
    });
    assert.deepEqual(subscription.eventTypes, ['sdk_reading_taken']);
    assert.ok(subscription.creationTimestamp instanceof Date);
    const found = await admin.events.subscriptions.findById(subscription.id);
    assert.equal(found.service.name, url);
    const listed = await admin.events.subscriptions.find({ rql: rqlBuilder().eq('retriable', 'true').build() });
    assert.ok(listed.data.some((s) => s.id === subscription.id));

    const event = await admin.events.create({ type: 'sdk_reading_taken', content: { value: 7 } });
    const sent = await until('the event at the subscriber', () => received.find((e) => e.id === event.id));
    assert.equal(sent.type, 'sdk_reading_taken');
    assert.deepEqual(sent.content, { value: 7 });
    assert.equal(typeof sent.creation_timestamp, 'number');
    await admin.events.create({ type: 'sdk_other', content: {} });
    const events = await admin.events.find({ rql: rqlBuilder().eq('type', 'sdk_reading_taken').build() });
    assert.equal(events.data[0].id, event.id);
  } finally {
    server.close();
  }
});

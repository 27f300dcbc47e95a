// Data-service schemas through the unmodified Extra Horizon SDK: the configuration an
// `exh data schemas sync` makes (properties, statuses, creation transition, transitions found back
// by name, indexes, root attributes), its errors, and deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FieldFormatError,
  IllegalStateError,
  NoPermissionError,
  ResourceAlreadyExistsError,
  ResourceUnknownError,
  StatusInUseError,
} from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

test('a schema is configured, found, changed and deleted', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const schema = await admin.data.schemas.create({
    name: 'sdk-blood-pressure',
    description: 'Blood pressure measurements',
    readMode: 'default',
    groupSyncMode: 'creatorPatientEnlistments',
  });
  assert.equal(schema.name, 'sdk-blood-pressure');
  assert.deepEqual(schema.statuses, { new: {} });
  assert.deepEqual(schema.creationTransition, { type: 'manual', toStatus: 'new' });
  assert.deepEqual(schema.readMode, ['linkedUsers', 'linkedGroupStaff']);
  assert.equal(schema.groupSyncMode, 'creatorPatientEnlistments');
  assert.ok(schema.creationTimestamp instanceof Date && !Number.isNaN(schema.creationTimestamp.getTime()));

  const { data } = admin;
  assert.deepEqual(
    await data.properties.create(schema.id, { name: 'systolic', configuration: { type: 'number', minimum: 0, maximum: 300 } }),
    { affectedRecords: 1 },
  );
  await data.properties.create('sdk-blood-pressure', { name: 'diastolic', configuration: { type: 'number' } });
  await data.properties.create('sdk-blood-pressure', { name: 'device', configuration: { type: 'object', properties: {} } });
  await data.properties.create('sdk-blood-pressure', { name: 'device.serial', configuration: { type: 'string', maxLength: 40 } });
  await data.properties.update('sdk-blood-pressure', 'device.serial', { type: 'string', maxLength: 64 });
  await data.properties.remove('sdk-blood-pressure', 'diastolic');
  await data.statuses.create('sdk-blood-pressure', { name: 'analyzed', data: { label: 'Analyzed' } });
  await data.statuses.create('sdk-blood-pressure', { name: 'reviewed' });
  await data.statuses.update('sdk-blood-pressure', 'reviewed', { data: { label: 'Reviewed' } });
  await data.transitions.updateCreation('sdk-blood-pressure', {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'linkCreator' }],
  });
  const analyze = await data.transitions.create('sdk-blood-pressure', {
    name: 'analyze',
    type: 'automatic',
    fromStatuses: ['new'],
    toStatus: 'analyzed',
    conditions: [{
      type: 'document',
      configuration: { type: 'object', properties: { data: { type: 'object', required: ['systolic'] } } },
    }],
  });
  assert.equal(analyze.name, 'analyze');
  const review = await data.transitions.create('sdk-blood-pressure', {
    name: 'review',
    type: 'manual',
    fromStatuses: ['analyzed'],
    toStatus: 'reviewed',
    afterActions: [{ type: 'task', functionName: 'notify-patient' }],
  });
  await data.transitions.update('sdk-blood-pressure', review.id, {
    name: 'review',
    type: 'manual',
    fromStatuses: ['analyzed', 'new'],
    toStatus: 'reviewed',
  });
  const index = await data.indexes.create('sdk-blood-pressure', {
    fields: [{ name: 'data.systolic', type: 'desc' }],
    options: { sparse: true },
  });
  assert.equal(index.name, 'data.systolic_-1');
  await assert.rejects(
    data.indexes.create('sdk-blood-pressure', { fields: [{ name: 'data.systolic', type: 'desc' }] }),
    ResourceAlreadyExistsError,
  );
  await data.schemas.update('sdk-blood-pressure', { description: 'Systolic pressure', maximumLimit: 50 });

  const found = await data.schemas.findByName('sdk-blood-pressure');
  assert.equal(found.id, schema.id);
  assert.equal(found.description, 'Systolic pressure');
  assert.equal(found.maximumLimit, 50);
  assert.deepEqual(found.properties, {
    systolic: { type: 'number', minimum: 0, maximum: 300 },
    device: { type: 'object', properties: { serial: { type: 'string', maxLength: 64 } } },
  });
  assert.deepEqual(found.statuses, { new: {}, analyzed: { label: 'Analyzed' }, reviewed: { label: 'Reviewed' } });
  assert.deepEqual(found.creationTransition.actions, [{ type: 'linkCreator' }]);
  assert.equal(found.findTransitionIdByName('analyze'), analyze.id);
  assert.deepEqual(found.transitionsByName.review.fromStatuses, ['analyzed', 'new']);
  assert.deepEqual(found.transitionsByName.review.afterActions, undefined);
  assert.deepEqual(found.indexes.map((i) => i.id), [index.id]);
  assert.equal((await data.schemas.findById(schema.id)).name, 'sdk-blood-pressure');

  // Errors, each with its SDK class.
  await assert.rejects(data.statuses.remove('sdk-blood-pressure', 'analyzed'), StatusInUseError);
  await assert.rejects(data.schemas.create({ name: 'sdk-blood-pressure', description: '' }), ResourceAlreadyExistsError);
  await assert.rejects(data.properties.create('sdk-blood-pressure', { name: 'n', configuration: { type: 'integer' } }), FieldFormatError);
  await assert.rejects(data.transitions.remove('sdk-blood-pressure', '5e9f00000000000000000001'), ResourceUnknownError);
  await assert.rejects(data.schemas.remove('sdk-blood-pressure'), IllegalStateError);
  await assert.rejects(data.schemas.update('no-such-schema', { description: '' }), ResourceUnknownError);

  // A user without the permissions sees the schema and cannot change it.
  await client().users.createAccount({
    firstName: 'Schema',
    lastName: 'Reader',
    email: 'schema.reader@example.com',
    password: 'schema reader password',
    language: 'EN',
    timeZone: 'Europe/Brussels',
    activationMode: 'manual',
  });
  const reader = await loggedIn('schema.reader@example.com', 'schema reader password');
  assert.equal((await reader.data.schemas.findByName('sdk-blood-pressure')).id, schema.id);
  await assert.rejects(reader.data.statuses.create('sdk-blood-pressure', { name: 'mine' }), NoPermissionError);
  await assert.rejects(reader.data.schemas.disable('sdk-blood-pressure'), NoPermissionError);

  // Disabled, it is hidden from them; deleted, from everyone.
  assert.deepEqual(await data.schemas.disable(schema.id), { affectedRecords: 1 });
  assert.equal(await reader.data.schemas.findByName('sdk-blood-pressure'), undefined);
  assert.equal((await data.schemas.findByName('sdk-blood-pressure')).id, schema.id);
  assert.deepEqual(await data.schemas.enable(schema.id), { affectedRecords: 1 });
  assert.equal((await reader.data.schemas.findByName('sdk-blood-pressure')).id, schema.id);
  await data.schemas.disable(schema.id);
  assert.deepEqual(await data.schemas.remove('sdk-blood-pressure'), { affectedRecords: 1 });
  assert.equal(await data.schemas.findById(schema.id), undefined);
});

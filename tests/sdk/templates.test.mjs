// The template service v2 through the unmodified Extra Horizon SDK: templates created, found,
// updated and removed by id or name, and resolved with inputs, helpers and localizations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ResourceAlreadyExistsError, ResourceUnknownError, TemplateFillingError, TemplateResolvingError, TemplateSyntaxError,
} from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, loggedIn } from './vigil.mjs';

test('a v2 template is created, resolved with helpers and localizations, updated and removed', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  await admin.localizations.create({
    localizations: [{ key: 'sdk_tpl_greeting', text: { EN: 'Dear {{name}},', NL: 'Beste {{name}},' } }],
  });
  const template = await admin.templatesV2.create({
    name: 'sdk-report-mail',
    description: 'A report is ready',
    inputs: {
      first_name: { type: 'string' },
      readings: { type: 'array', items: { type: 'object', properties: { value: { type: 'number' } } } },
    },
    outputs: {
      subject: "{{t 'sdk_tpl_greeting' name=@inputs.first_name}} {{length @inputs.readings}} readings",
      body: '{{#each @inputs.readings}}{{#gt value 140}}high{{else}}ok{{/gt}}:{{value}};{{/each}} total {{sum 1 2 3}}',
    },
  });
  assert.equal(template.name, 'sdk-report-mail');
  assert.ok(template.creationTimestamp instanceof Date);
  assert.deepEqual(Object.keys(template.inputs).sort(), ['first_name', 'readings']);
  const found = await admin.templatesV2.findByName('sdk-report-mail');
  assert.equal(found.id, template.id);
  assert.equal((await admin.templatesV2.findById(template.id)).name, 'sdk-report-mail');

  const inputs = { first_name: 'Jane', readings: [{ value: 120 }, { value: 150 }] };
  const english = await admin.templatesV2.resolve('sdk-report-mail', { inputs });
  assert.deepEqual(english, { subject: 'Dear Jane, 2 readings', body: 'ok:120;high:150; total 6' });
  const dutch = await admin.templatesV2.resolve(template.id, { inputs, language: 'NL', timeZone: 'Europe/Brussels' });
  assert.equal(dutch.subject, 'Beste Jane, 2 readings');

  await assert.rejects(
    admin.templatesV2.resolve('sdk-report-mail', { inputs: { first_name: 7 } }),
    TemplateFillingError,
  );
  await assert.rejects(
    admin.templatesV2.create({ name: 'sdk-broken', outputs: { body: 'fine', subject: '{{#if x}}never closed' } }),
    (error) => error instanceof TemplateSyntaxError && error.response.syntaxError.output === 'subject',
  );
  await assert.rejects(
    admin.templatesV2.create({ name: 'sdk-report-mail', outputs: { body: 'again' } }),
    ResourceAlreadyExistsError,
  );
  await admin.templatesV2.create({ name: 'sdk-unknown-helper', outputs: { body: '{{shout @inputs.x}}' } });
  await assert.rejects(
    admin.templatesV2.resolve('sdk-unknown-helper', { inputs: { x: 'a' } }),
    (error) => error instanceof TemplateResolvingError && error.response.resolveError.output === 'body',
  );

  // Updated by name: what is given changes, `null` removes the description and inputs.
  assert.deepEqual(
    await admin.templatesV2.update('sdk-report-mail', { name: 'sdk-report-mail-2', description: null, inputs: null }),
    { affectedRecords: 1 },
  );
  const renamed = await admin.templatesV2.findById(template.id);
  assert.equal(renamed.name, 'sdk-report-mail-2');
  assert.equal(renamed.description, undefined);
  assert.equal(renamed.inputs, undefined);
  assert.equal(renamed.outputs.body, template.outputs.body);
  // The old name is free again.
  const reused = await admin.templatesV2.create({ name: 'sdk-report-mail', outputs: { body: 'reused' } });
  assert.notEqual(reused.id, template.id);

  assert.deepEqual(await admin.templatesV2.remove(template.id), { affectedRecords: 1 });
  assert.equal(await admin.templatesV2.findById(template.id), undefined);
  await assert.rejects(admin.templatesV2.remove(template.id), ResourceUnknownError);
  await assert.rejects(admin.templatesV2.resolve('sdk-report-mail-2', {}), ResourceUnknownError);
  assert.ok(await admin.templatesV2.health());
});

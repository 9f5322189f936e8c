import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, loadDescriptorSet, SERVICE_NAMES, v1 } from '@aimass/proto';

const files = fromBinary(FileDescriptorSetSchema, loadDescriptorSet()).file;
const byName = new Map(files.map((f) => [f.name, f]));

describe('descriptor set', () => {
  it('contains every contract and the well-known types they import (reflection needs them)', () => {
    for (const file of files) {
      for (const dep of file.dependency) expect(byName.has(dep), `${file.name} imports ${dep}`).toBe(true);
    }
    expect([...byName.keys()]).toEqual(
      expect.arrayContaining([
        'inference/grpc_service.proto',
        'aimass/v1/common.proto',
        'aimass/v1/inference.proto',
        'aimass/v1/general_model.proto',
        'aimass/v1/personal_model.proto',
        'aimass/v1/privacy.proto',
        'aimass/v1/admin.proto',
        'aimass/v1/events.proto',
        'google/protobuf/timestamp.proto',
      ]),
    );
  });

  it('keeps source comments, so reflection clients can show them', () => {
    const locations = byName.get('aimass/v1/inference.proto')?.sourceCodeInfo?.location ?? [];
    expect(locations.some((l) => l.leadingComments.includes('Classifies one input for one user'))).toBe(true);
  });

  it('defines every service named in SERVICE_NAMES', () => {
    const defined = files.flatMap((f) => f.service.map((s) => `${f.package}.${s.name}`));
    expect(defined.sort()).toEqual(Object.values(SERVICE_NAMES).sort());
  });
});

describe('events', () => {
  const events = byName.get('aimass/v1/events.proto');
  const eventMessages = (events?.messageType ?? []).filter((m) => m.field[0]?.name === 'envelope');

  it('every event carries EventEnvelope in field 1', () => {
    const notEvents = (events?.messageType ?? []).filter((m) => !eventMessages.includes(m)).map((m) => m.name);
    expect(notEvents.sort()).toEqual(['EncryptedPayload', 'EventEnvelope']);
    for (const message of eventMessages) {
      expect(message.field[0]?.number, message.name).toBe(1);
      expect(message.field[0]?.typeName, message.name).toBe('.aimass.v1.EventEnvelope');
    }
  });

  it('EVENT_TYPES lists exactly the event messages, by full name', () => {
    expect(Object.keys(EVENT_TYPES).sort()).toEqual(eventMessages.map((m) => `aimass.v1.${m.name}`).sort());
    expect(EVENT_TYPES['aimass.v1.ConsentChanged']).toBe(v1.ConsentChanged);
  });
});

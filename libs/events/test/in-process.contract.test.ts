import { join } from 'node:path';
import { tempDir } from '@aimass/testing';
import { createInProcessBus, InProcessBroker } from '../src/index.js';
import { describeEventBusContract } from './contract.js';

describeEventBusContract('in-process', async () => {
  const broker = new InProcessBroker();
  return {
    connect: async () => createInProcessBus({ broker }),
    kill: (bus) => bus.close(),
    dispose: async () => undefined,
  };
});

describeEventBusContract('in-process with a journal', async () => {
  const dir = await tempDir('aimass-journal-');
  const broker = new InProcessBroker({ journalPath: join(dir.path, 'events.journal') });
  return {
    connect: async () => createInProcessBus({ broker }),
    kill: (bus) => bus.close(),
    dispose: () => dir.remove(),
  };
});

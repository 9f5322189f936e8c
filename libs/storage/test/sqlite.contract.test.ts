import { openSqliteStore } from '@aimass/storage';
import { describeDocumentStoreContract } from './contract.js';

describeDocumentStoreContract('sqlite (:memory:)', () => openSqliteStore({ path: ':memory:', maxDocumentBytes: 1024 * 1024 }));

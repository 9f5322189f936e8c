/** Base class of every error the event bus raises on purpose. */
export class EventBusError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventBusError';
  }
}

/**
 * The bus could not confirm that an event was stored within the publish bound (server down,
 * reconnecting, no stream answering). The event may or may not have been stored: publish it
 * again with the same dedupeId and the stream's duplicate window keeps it single.
 */
export class EventBusUnavailableError extends EventBusError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventBusUnavailableError';
  }
}

/** The bus (or the connection under it) was closed. */
export class EventBusClosedError extends EventBusError {
  constructor(message = 'the event bus is closed', options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventBusClosedError';
  }
}

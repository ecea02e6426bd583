// Fleet events between sidecar processes: a task is ready or cancelled for an agent, an agent was
// deleted. Each process's task streams act on the events for the agents connected to it. Within
// one process the events go from publisher to listeners in memory; between processes through
// Redis pub/sub (fanout-redis.ts) or PostgreSQL LISTEN/NOTIFY (fanout-postgres.ts).

export type FleetEvent =
  | { type: 'task_ready'; agentId: string }
  | { type: 'task_cancelled'; agentId: string; taskId: string }
  | { type: 'agent_deleted'; agentId: string };

export interface Fanout {
  /** Delivers the event to every process's listeners, this one's included. */
  publish(event: FleetEvent): Promise<void>;
  subscribe(listener: (event: FleetEvent) => void): void;
  close(): Promise<void>;
}

/** One process: listeners are called on the next tick, as they would be from a wire. */
export function memoryFanout(): Fanout {
  const listeners: ((event: FleetEvent) => void)[] = [];
  return {
    async publish(event) {
      setImmediate(() => {
        for (const listener of listeners) listener(event);
      });
    },
    subscribe: (listener) => void listeners.push(listener),
    async close() {
      listeners.length = 0;
    },
  };
}

/** The event from its wire form, or undefined for a message that is not one. */
export function parseEvent(text: string): FleetEvent | undefined {
  try {
    const event = JSON.parse(text) as Partial<FleetEvent>;
    if (typeof event.agentId !== 'string') return undefined;
    if (event.type === 'task_ready' || event.type === 'agent_deleted') return { type: event.type, agentId: event.agentId };
    if (event.type === 'task_cancelled' && typeof event.taskId === 'string') return { type: event.type, agentId: event.agentId, taskId: event.taskId };
    return undefined;
  } catch {
    return undefined;
  }
}

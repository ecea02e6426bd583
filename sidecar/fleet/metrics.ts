// The fleet's Prometheus metrics, on the sidecar's registry: agents by status and tasks by state
// (read from the state database at scrape time, so every replica reports the same), and this
// process's heartbeats, registrations, expired leases, pushes and open streams.
import { Counter, Gauge, type Registry } from 'prom-client';
import { AGENT_STATUSES, type FleetAgents } from './agents.ts';
import { TASK_STATES, type TaskQueue } from './tasks.ts';

export interface FleetMetrics {
  heartbeats: Counter;
  registrations: Counter<'result'>;
  /** `outcome` is `requeued` or `failed`. */
  leasesExpired: Counter<'outcome'>;
  /** `via` is `heartbeat`, `poll` or `stream`. */
  deliveries: Counter<'via'>;
}

export function fleetMetrics(registry: Registry, { agents, queue, streams, flushHeartbeats, now }: { agents: FleetAgents; queue: TaskQueue; streams: () => number; flushHeartbeats: () => Promise<void>; now: () => Date }): FleetMetrics {
  const registers = [registry];
  new Gauge({
    name: 'fleet_agents',
    help: 'Registered agents by status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      await flushHeartbeats();
      const counts = await agents.countByStatus(now());
      for (const status of AGENT_STATUSES) this.set({ status }, counts[status]);
    },
  });
  new Gauge({
    name: 'fleet_tasks',
    help: 'Tasks by state',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const counts = await queue.countByState();
      for (const state of TASK_STATES) this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: 'fleet_task_streams',
    help: 'Open task streams on this process',
    registers,
    collect() {
      this.set(streams());
    },
  });
  return {
    heartbeats: new Counter({ name: 'fleet_heartbeats_total', help: 'Agent heartbeats recorded', registers }),
    registrations: new Counter({ name: 'fleet_registrations_total', help: 'Agent registrations by result', labelNames: ['result'] as const, registers }),
    leasesExpired: new Counter({ name: 'fleet_leases_expired_total', help: 'Task leases that ended without a completion, by what became of the task', labelNames: ['outcome'] as const, registers }),
    deliveries: new Counter({ name: 'fleet_task_deliveries_total', help: 'Task deliveries (each with a lease) by how they reached the agent', labelNames: ['via'] as const, registers }),
  };
}

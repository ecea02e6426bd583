// The JSON the fleet answers with: agents as the seed lists them, tasks as an agent receives them
// (with their credentials and lease) and as an operator reads them (credential values hidden).
import type { FleetAgent, AgentStatus } from './agents.ts';
import type { FleetTask } from './tasks.ts';

export function agentSummary(agent: FleetAgent, status: AgentStatus) {
  return {
    id: agent.id,
    name: agent.name,
    version: agent.version,
    status,
    capabilities: JSON.parse(agent.capabilities) as string[],
    labels: JSON.parse(agent.labels) as Record<string, string>,
    lastHeartbeat: isoSeconds(agent.last_heartbeat_at),
    resourceUsage: JSON.parse(agent.resource_usage) as Record<string, number>,
  };
}

export function agentDetails(agent: FleetAgent, status: AgentStatus, tasks: { queued: FleetTask[]; leased: FleetTask[]; finished: FleetTask[] }) {
  return {
    ...agentSummary(agent, status),
    reportedStatus: agent.reported_status,
    runningTasks: agent.running_tasks,
    registeredAt: isoSeconds(agent.registered_at),
    updatedAt: isoSeconds(agent.updated_at),
    certificate: { serial: agent.cert_serial, expiresAt: isoSeconds(agent.cert_expires_at) },
    tasks: { running: tasks.leased.map(operatorTask), queued: tasks.queued.map(operatorTask), recent: tasks.finished.map(operatorTask) },
  };
}

/** A task as delivered to the agent holding its lease. */
export function deliveredTask(task: FleetTask) {
  return {
    taskId: task.id,
    taskType: task.task_type,
    payload: JSON.parse(task.payload) as Record<string, unknown>,
    credentials: JSON.parse(task.credentials ?? '{}') as Record<string, string>,
    timeout: task.timeout_seconds,
    priority: task.priority,
    createdAt: isoSeconds(task.created_at),
    leaseId: task.lease_id,
    leaseExpiresAt: task.lease_expires_at && isoSeconds(task.lease_expires_at),
    attempt: task.attempts,
  };
}

/** A task as operators see it: everything but the credentials' values. */
export function operatorTask(task: FleetTask) {
  return {
    taskId: task.id,
    agentId: task.agent_id,
    taskType: task.task_type,
    state: task.state,
    priority: task.priority,
    timeout: task.timeout_seconds,
    payload: JSON.parse(task.payload) as Record<string, unknown>,
    credentialKeys: Object.keys(JSON.parse(task.credentials ?? '{}') as Record<string, string>),
    attempts: task.attempts,
    maxAttempts: task.max_attempts,
    lease: task.state === 'leased' ? { leaseId: task.lease_id, agentId: task.lease_agent_id, expiresAt: task.lease_expires_at && isoSeconds(task.lease_expires_at) } : null,
    progress: task.progress,
    progressMessage: task.progress_message,
    success: task.success === null ? null : task.success === 1,
    result: task.result === null ? null : (JSON.parse(task.result) as unknown),
    failure: task.failure,
    logs: JSON.parse(task.logs) as unknown[],
    createdBy: task.created_by,
    createdAt: isoSeconds(task.created_at),
    updatedAt: isoSeconds(task.updated_at),
    finishedAt: task.finished_at && isoSeconds(task.finished_at),
  };
}

/** `2026-01-10T14:23:45Z`, as the seed writes times. */
export function isoSeconds(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}

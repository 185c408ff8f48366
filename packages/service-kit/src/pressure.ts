/**
 * Route-level under-pressure handler that lets the request through: probes and metrics must answer
 * while the service sheds load, or an orchestrator restarts a busy but healthy process.
 */
export const admitUnderPressure = (): undefined => undefined;

// Dated futures and options: names, calendar, listing schedule, settlement
// (docs/derivatives.md).
export * from './calendar.ts';
export * from './names.ts';
export * from './schedule.ts';
export * from './settlement.ts';

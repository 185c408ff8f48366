/** PromQL functions, aggregations and keywords: every other bare identifier in an expression is a metric name. */
const NOT_METRICS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'resets', 'changes',
  'histogram_quantile', 'abs', 'ceil', 'floor', 'round', 'clamp', 'clamp_min', 'clamp_max', 'absent', 'absent_over_time',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'quantile_over_time',
  'label_replace', 'label_join', 'vector', 'scalar', 'time', 'timestamp', 'sort', 'sort_desc', 'exp', 'ln', 'log2', 'log10', 'sqrt',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan',
]);

/**
 * The metric names an expression reads. Strings, label matchers, ranges and grouping label lists are removed first,
 * so label names and values are never taken for metrics.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const name = m[1] as string;
    if (!NOT_METRICS.has(name.toLowerCase()) && !/^\d/.test(name)) names.add(name);
  }
  return [...names];
}

/** Series names of a Prometheus text scrape. */
export function exposedNames(scrapeText: string): Set<string> {
  const names = new Set<string>();
  for (const line of scrapeText.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) names.add(m[1] as string);
  }
  return names;
}

"""The plan's calculations as SQL that lives *in the file*.

Each named query is a DuckDB table macro taking its filter as an argument
(``best_trade_offs_of('run-1')``; ``NULL`` means everything) plus a view over
everything (``best_trade_offs``), so any DuckDB client opening the file can
use them, and the Python methods only bind a parameter. A macro's argument is
folded into the plan, so ``run_id = ?`` is pushed down to the scan.

Objectives are generic: a run's ``objectives`` column lists names and
directions (the standard three when it lists none) and each trial's
``objective_values`` holds the values; ``trial_objectives`` unpivots them,
with ``signed`` = value for objectives to minimize and -value for those to
maximize, so "smaller is better" everywhere downstream. A missing value counts
as the worst possible (a trial whose price is unknown never looks cheap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NAMED_SQL_V1", "NamedQueries"]

_TRIAL_OBJECTIVES = """
CREATE VIEW trial_objectives AS
WITH declared AS (
    SELECT r.run_id, u.o.name AS objective, u.o.direction AS direction
    FROM runs AS r,
         unnest(from_json(r.objectives, '[{"name": "VARCHAR", "direction": "VARCHAR"}]'))
             AS u(o)
    WHERE u.o.name IS NOT NULL
), specs AS (
    SELECT run_id, objective, direction FROM declared
    UNION ALL
    SELECT t.run_id, d.objective, d.direction
    FROM (SELECT DISTINCT run_id FROM trials) AS t
    CROSS JOIN (VALUES ('accuracy', 'maximize'), ('cost', 'minimize'),
                       ('latency_s', 'minimize')) AS d(objective, direction)
    WHERE t.run_id NOT IN (SELECT run_id FROM declared)
), normalized AS (
    SELECT run_id, objective,
           CASE WHEN lower(direction) IN ('maximize', 'max') THEN 'maximize'
                ELSE 'minimize' END AS dir
    FROM specs
)
SELECT t.run_id, t.trial_id, t.number, t.state, s.objective, s.dir AS direction,
       TRY_CAST(json_extract(t.objective_values,
                             '$."' || replace(s.objective, '"', '\\"') || '"') AS DOUBLE)
           AS value,
       CASE WHEN s.dir = 'maximize' THEN -value ELSE value END AS signed
FROM trials AS t JOIN normalized AS s USING (run_id)
"""

_BEST_TRADE_OFFS = """
CREATE MACRO best_trade_offs_of(rid) AS TABLE
WITH o AS (
    SELECT run_id, trial_id, objective, coalesce(signed, 'inf'::DOUBLE) AS s
    FROM trial_objectives
    WHERE state = 'completed' AND (rid IS NULL OR run_id = rid)
), dominated AS (
    SELECT a.trial_id
    FROM o AS a JOIN o AS b
      ON a.run_id = b.run_id AND a.objective = b.objective AND a.trial_id <> b.trial_id
    GROUP BY a.trial_id, b.trial_id
    HAVING bool_and(b.s <= a.s) AND bool_or(b.s < a.s)
)
SELECT t.run_id, t.trial_id, t.number, t.params, t.accuracy, t.cost, t.latency_s,
       t.objective_values, t.metrics
FROM trials AS t
WHERE t.state = 'completed' AND (rid IS NULL OR t.run_id = rid)
  AND t.trial_id NOT IN (SELECT trial_id FROM dominated)
ORDER BY t.run_id, t.accuracy DESC NULLS LAST, t.cost NULLS LAST, t.number
"""

_VARIABLE_IMPORTANCE = """
CREATE MACRO variable_importance_of(rid) AS TABLE
WITH obs AS (
    SELECT o.run_id, o.trial_id, p.key AS variable,
           CASE WHEN json_type(p.value) = 'VARCHAR' THEN p.value ->> '$'
                ELSE p.value::VARCHAR END AS setting,
           TRY_CAST(p.value::VARCHAR AS DOUBLE) AS numeric_setting,
           o.objective, o.direction, o.value
    FROM trial_objectives AS o
    JOIN trials AS t ON t.trial_id = o.trial_id
    CROSS JOIN json_each(t.params) AS p
    WHERE o.state = 'completed' AND o.value IS NOT NULL AND isfinite(o.value)
      AND (rid IS NULL OR o.run_id = rid)
), shape AS (
    SELECT run_id, variable, count(DISTINCT setting) AS n_distinct,
           bool_and(numeric_setting IS NOT NULL) AS is_numeric
    FROM obs GROUP BY run_id, variable
), grouped AS (
    SELECT obs.*,
           CASE WHEN shape.is_numeric AND shape.n_distinct > 6
                THEN ntile(5) OVER (PARTITION BY obs.run_id, obs.variable, obs.objective
                                    ORDER BY obs.numeric_setting)::VARCHAR
                ELSE obs.setting END AS grp,
           shape.is_numeric AND shape.n_distinct > 6 AS binned
    FROM obs JOIN shape USING (run_id, variable)
), cells AS (
    SELECT run_id, variable, objective, any_value(direction) AS direction, grp,
           any_value(binned) AS binned,
           CASE WHEN any_value(binned)
                THEN '[' || min(numeric_setting) || ', ' || max(numeric_setting) || ']'
                ELSE any_value(setting) END AS label,
           count(*) AS n, avg(value) AS mean
    FROM grouped GROUP BY run_id, variable, objective, grp
), totals AS (
    SELECT run_id, variable, objective, count(*) AS n, avg(value) AS grand,
           var_pop(value) * count(*) AS ss_total
    FROM grouped GROUP BY run_id, variable, objective
), parts AS (
    SELECT c.run_id, c.variable, c.objective, any_value(c.direction) AS direction,
           any_value(t.n) AS n_trials, count(*) AS n_settings, any_value(t.grand) AS grand,
           sum(c.n * (c.mean - t.grand) ^ 2) AS ss_between, any_value(t.ss_total) AS ss_total,
           arg_max(c.label, CASE WHEN c.direction = 'maximize' THEN c.mean ELSE -c.mean END)
               AS best_setting,
           max(CASE WHEN c.direction = 'maximize' THEN c.mean ELSE -c.mean END) AS best_signed
    FROM cells AS c JOIN totals AS t USING (run_id, variable, objective)
    GROUP BY c.run_id, c.variable, c.objective
)
SELECT run_id, variable, objective,
       CASE WHEN n_settings < 2 THEN 0.0
            WHEN n_trials <= n_settings
                 OR ss_total <= 1e-12 * n_trials * (1 + grand * grand) THEN NULL
            ELSE greatest(0.0, least(1.0,
                (ss_between - (n_settings - 1) * (ss_total - ss_between)
                              / (n_trials - n_settings)) / ss_total)) END AS importance,
       n_trials, n_settings, best_setting,
       CASE WHEN direction = 'maximize' THEN best_signed ELSE -best_signed END AS best_mean,
       direction
FROM parts
ORDER BY run_id, objective, importance DESC NULLS LAST, variable
"""

_COST_EFFICIENCY = """
CREATE MACRO cost_efficiency_of(rid) AS TABLE
SELECT run_id, trial_id, number, params, accuracy, cost, latency_s,
       accuracy / nullif(cost, 0) AS accuracy_per_dollar,
       rank() OVER (PARTITION BY run_id
                    ORDER BY accuracy / nullif(cost, 0) DESC NULLS LAST) AS rank_in_run
FROM trials
WHERE state = 'completed' AND accuracy IS NOT NULL AND (rid IS NULL OR run_id = rid)
ORDER BY run_id, rank_in_run, number
"""

_CONVERGENCE_STATUS = """
CREATE MACRO convergence_status_of(rid) AS TABLE
WITH done AS (
    SELECT run_id, trial_id, number, objective, coalesce(signed, 'inf'::DOUBLE) AS s
    FROM trial_objectives
    WHERE state = 'completed' AND (rid IS NULL OR run_id = rid)
), not_new AS (
    SELECT a.trial_id
    FROM done AS a JOIN done AS b
      ON a.run_id = b.run_id AND a.objective = b.objective AND b.number < a.number
    GROUP BY a.trial_id, b.trial_id
    HAVING bool_and(b.s <= a.s)
), completed AS (
    SELECT DISTINCT run_id, trial_id, number FROM done
), last_move AS (
    SELECT run_id, max(number) AS last_improvement
    FROM completed WHERE trial_id NOT IN (SELECT trial_id FROM not_new)
    GROUP BY run_id
), counts AS (
    SELECT run_id, count(*) AS n_trials,
           count(*) FILTER (WHERE state = 'completed') AS n_completed,
           count(*) FILTER (WHERE state = 'pruned') AS n_pruned,
           count(*) FILTER (WHERE state = 'failed') AS n_failed,
           count(*) FILTER (WHERE state = 'running') AS n_running,
           max(accuracy) FILTER (WHERE state = 'completed') AS best_accuracy
    FROM trials WHERE rid IS NULL OR run_id = rid
    GROUP BY run_id
), since AS (
    SELECT c.run_id, count(*) FILTER (WHERE c.number > l.last_improvement)
               AS trials_since_improvement
    FROM completed AS c JOIN last_move AS l USING (run_id)
    GROUP BY c.run_id
)
SELECT k.run_id, r.state AS run_state, k.n_trials, k.n_completed, k.n_pruned, k.n_failed,
       k.n_running, k.best_accuracy, l.last_improvement,
       coalesce(s.trials_since_improvement, 0) AS trials_since_improvement,
       CASE WHEN k.n_completed = 0 THEN 'no_trials'
            WHEN k.n_completed < 10 THEN 'warming_up'
            WHEN coalesce(s.trials_since_improvement, 0) >= greatest(10, k.n_completed // 2)
                THEN 'converged'
            WHEN coalesce(s.trials_since_improvement, 0) >= greatest(5, k.n_completed // 4)
                THEN 'slowing'
            ELSE 'improving' END AS status
FROM counts AS k
LEFT JOIN last_move AS l USING (run_id)
LEFT JOIN since AS s USING (run_id)
LEFT JOIN runs AS r USING (run_id)
ORDER BY k.run_id
"""

_FAILURES_BY_KIND = """
CREATE MACRO failures_by_kind_of(rid) AS TABLE
WITH scope AS (
    SELECT kind, model, error_kind, error_message, will_retry, started_at
    FROM executions WHERE rid IS NULL OR run_id = rid
), totals AS (
    SELECT kind, model, count(*) AS attempts FROM scope GROUP BY kind, model
)
SELECT f.kind, f.error_kind, f.model, count(*) AS failures,
       count(*) FILTER (WHERE f.will_retry) AS retried,
       count(*) FILTER (WHERE NOT coalesce(f.will_retry, false)) AS final,
       count(*) / any_value(t.attempts) AS share_of_rows,
       min(f.started_at) AS first_seen, max(f.started_at) AS last_seen,
       arg_max(f.error_message, f.started_at) AS last_message
FROM scope AS f JOIN totals AS t ON t.kind = f.kind AND t.model IS NOT DISTINCT FROM f.model
WHERE f.error_kind IS NOT NULL
GROUP BY f.kind, f.error_kind, f.model
ORDER BY failures DESC, f.kind, f.error_kind, f.model
"""

_CURRENT_PERFORMANCE = """
CREATE MACRO current_performance_of(prog) AS TABLE
WITH calls AS (
    SELECT module, started_at, latency_s, cost, uncached_cost, lm_calls, error_kind,
           max(started_at) OVER (PARTITION BY module) AS last_call
    FROM executions
    WHERE kind = 'program' AND (prog IS NULL OR module = prog)
)
SELECT module AS program, count(*) AS calls,
       count(*) FILTER (WHERE error_kind IS NULL) AS succeeded,
       avg(CASE WHEN error_kind IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate,
       avg(latency_s) AS latency_mean_s,
       quantile_cont(latency_s, 0.5) AS latency_p50_s,
       quantile_cont(latency_s, 0.95) AS latency_p95_s,
       avg(cost) AS cost_per_call, sum(cost) AS total_cost,
       avg(uncached_cost) AS uncached_cost_per_call,
       avg(lm_calls) AS lm_calls_per_call,
       min(started_at) AS window_start, any_value(last_call) AS last_call
FROM calls
WHERE started_at >= last_call - INTERVAL 1 DAY
GROUP BY module
ORDER BY last_call DESC
"""

_RUN_SUMMARY = """
CREATE MACRO run_summary_of(rid) AS TABLE
WITH t AS (
    SELECT run_id, count(*) AS n_trials,
           count(*) FILTER (WHERE state = 'completed') AS n_completed,
           count(*) FILTER (WHERE state = 'pruned') AS n_pruned,
           count(*) FILTER (WHERE state = 'failed') AS n_failed,
           max(accuracy) FILTER (WHERE state = 'completed') AS best_accuracy,
           min(cost) FILTER (WHERE state = 'completed') AS min_cost
    FROM trials WHERE rid IS NULL OR run_id = rid GROUP BY run_id
), e AS (
    SELECT run_id, count(*) AS lm_attempts, sum(cost) AS spent,
           count(*) FILTER (WHERE error_kind IS NOT NULL) AS lm_failures
    FROM executions
    WHERE kind = 'lm' AND run_id IS NOT NULL AND (rid IS NULL OR run_id = rid)
    GROUP BY run_id
)
SELECT r.run_id, r.name, r.program_id, r.strategy, r.state, r.stop_reason,
       r.started_at, r.ended_at,
       coalesce(t.n_trials, 0) AS n_trials, coalesce(t.n_completed, 0) AS n_completed,
       coalesce(t.n_pruned, 0) AS n_pruned, coalesce(t.n_failed, 0) AS n_failed,
       t.best_accuracy, t.min_cost,
       coalesce(e.lm_attempts, 0) AS lm_attempts, coalesce(e.lm_failures, 0) AS lm_failures,
       e.spent
FROM runs AS r
LEFT JOIN t USING (run_id)
LEFT JOIN e USING (run_id)
WHERE rid IS NULL OR r.run_id = rid
ORDER BY r.started_at DESC NULLS LAST, r.run_id
"""

_VIEWS = [
    "CREATE VIEW best_trade_offs AS SELECT * FROM best_trade_offs_of(NULL)",
    "CREATE VIEW variable_importance AS SELECT * FROM variable_importance_of(NULL)",
    "CREATE VIEW cost_efficiency AS SELECT * FROM cost_efficiency_of(NULL)",
    "CREATE VIEW convergence_status AS SELECT * FROM convergence_status_of(NULL)",
    "CREATE VIEW failures_by_kind AS SELECT * FROM failures_by_kind_of(NULL)",
    "CREATE VIEW current_performance AS SELECT * FROM current_performance_of(NULL)",
    "CREATE VIEW run_summary AS SELECT * FROM run_summary_of(NULL)",
]

NAMED_SQL_V1: list[str] = [
    _TRIAL_OBJECTIVES, _BEST_TRADE_OFFS, _VARIABLE_IMPORTANCE, _COST_EFFICIENCY,
    _CONVERGENCE_STATUS, _FAILURES_BY_KIND, _CURRENT_PERFORMANCE, _RUN_SUMMARY, *_VIEWS,
]
"""Statements of schema version 1 that define the named queries (run after the tables)."""


class NamedQueries:
    """The named queries as methods; a class using this provides ``_read_df``."""

    def _read_df(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                 ) -> pd.DataFrame:
        raise NotImplementedError

    def current_performance(self, program: str | None = None) -> pd.DataFrame:
        """Per program (module name): calls, error rate, latency p50/p95, cost per call,
        over the 24 hours up to its latest call."""
        return self._read_df("SELECT * FROM current_performance_of(?)", [program])

    def variable_importance(self, run_id: str) -> pd.DataFrame:
        """For each variable and objective of a run: the share of the objective's variance
        across completed trials explained by the variable's setting (epsilon-squared,
        0..1; numeric variables with many values are binned into quintiles), and its best
        setting."""
        return self._read_df("SELECT * FROM variable_importance_of(?)", [run_id])

    def cost_efficiency(self, run_id: str | None = None) -> pd.DataFrame:
        """Accuracy per dollar of each completed trial, ranked within its run."""
        return self._read_df("SELECT * FROM cost_efficiency_of(?)", [run_id])

    def convergence_status(self, run_id: str) -> pd.DataFrame:
        """One row: trial counts, the last trial that moved the Pareto front, how many
        completed trials since, and a status (no_trials, warming_up, improving, slowing,
        converged)."""
        return self._read_df("SELECT * FROM convergence_status_of(?)", [run_id])

    def best_trade_offs(self, run_id: str) -> pd.DataFrame:
        """The Pareto set of a run's completed trials over its objectives."""
        return self._read_df("SELECT * FROM best_trade_offs_of(?)", [run_id])

    def failures_by_kind(self, run_id: str | None = None) -> pd.DataFrame:
        """Failed rows grouped by row kind, error kind and model, with how many were
        retried and the latest message."""
        return self._read_df("SELECT * FROM failures_by_kind_of(?)", [run_id])

    def runs(self) -> pd.DataFrame:
        """Every run with its trial counts, best accuracy and dollars spent, newest first."""
        return self._read_df("SELECT * FROM run_summary_of(NULL)")

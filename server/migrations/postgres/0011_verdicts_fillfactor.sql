-- Verdict rows are rewritten in place (issue 3). A worker upserts each live session's verdict
-- row every 150-180 ms: about 5 000 updates a second under load, each a new 1.3 KB version of
-- the row. With full pages every new version went to another page, with a new entry in the
-- primary key's index: in a 10 s load test the table grew to 69 MB for 1 000 live rows, and
-- only 9 % of updates were HOT (heap-only). With half of each page kept free the new version
-- fits beside the old one, on the same page, without touching the index; the page's dead
-- versions are pruned as it fills. In `pgbench` every update was then HOT and the table stayed
-- at 4 MB, and a 125-verdict write took about half the time without its fence
-- (BENCHMARKS.md). Pages written before this migration keep their rows until those move.
ALTER TABLE session_verdicts SET (fillfactor = 50);

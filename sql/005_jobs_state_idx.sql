-- Jobs by state, newest first: kiln-admin's job list (GET /admin/api/jobs
-- ?state=) walks this index backwards from its cursor, so a page of a rare
-- state (discarded, cancelled) costs a page, not a scan of the completed
-- history; counting by state can read the index alone.
CREATE INDEX jobs_state_id_idx ON jobs (state, id);

-- The session table qxbridge's Go and Python stores share. Either side creates it
-- (idempotently) before first use; {table} is the table name, quoted.
CREATE TABLE IF NOT EXISTS {table} (
    id        text PRIMARY KEY,
    pickle    bytea NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    accessed  timestamptz NOT NULL DEFAULT now(),
    modified  timestamptz NOT NULL DEFAULT now(),
    user_name text
);
CREATE INDEX IF NOT EXISTS {index_modified} ON {table} (modified);
CREATE INDEX IF NOT EXISTS {index_user} ON {table} (user_name) WHERE user_name IS NOT NULL;

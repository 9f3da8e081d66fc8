-- state.db layout 5: learned server limits (`server_limits`: window, tokenizer ratio, slots per endpoint).
-- Layout 4 (v4.sql) upgraded by store_schema's fifth step, stamped `PRAGMA user_version = 5`, with a learned row.
-- Opened by tests/test_state.py, which runs summarise, inbox and regenerate on it.
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, ts TEXT NOT NULL, label TEXT, model TEXT, mode TEXT, endpoint TEXT,
    prompt_version TEXT, calls INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER,
    completion_tokens INTEGER, cost REAL, response TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS modes (endpoint TEXT PRIMARY KEY, mode TEXT NOT NULL, ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS extractions (
    key TEXT PRIMARY KEY, transcript_hash TEXT NOT NULL, engine TEXT, model TEXT,
    prompt_version TEXT, result TEXT NOT NULL, ts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    note_path TEXT PRIMARY KEY, transcript_hash TEXT, source_ref TEXT, engine TEXT, model TEXT,
    prompt_version TEXT, template_version TEXT, extraction TEXT, ts TEXT NOT NULL, rendered TEXT
);

CREATE TABLE IF NOT EXISTS inbox_transcripts (
    content_hash TEXT PRIMARY KEY, status TEXT NOT NULL, inbox_path TEXT, note_path TEXT,
    note_sha TEXT, archive_path TEXT, engine TEXT, model TEXT, prompt_version TEXT,
    calls INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER,
    cost REAL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL, updated TEXT NOT NULL, done_at TEXT
);
CREATE INDEX IF NOT EXISTS inbox_transcripts_status ON inbox_transcripts (status);
CREATE TABLE IF NOT EXISTS inbox_duplicates (
    content_hash TEXT NOT NULL, inbox_path TEXT NOT NULL, status TEXT NOT NULL,
    archive_path TEXT, duplicate_of TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (content_hash, inbox_path)
);
CREATE INDEX IF NOT EXISTS inbox_duplicates_status ON inbox_duplicates (status);

CREATE TABLE IF NOT EXISTS inbox_batches (
    token TEXT PRIMARY KEY, batch_id TEXT, input_file_id TEXT, status TEXT NOT NULL,
    engine TEXT, model TEXT, prompt_version TEXT, requests INTEGER,
    created TEXT NOT NULL, updated TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS inbox_batch_items (
    token TEXT NOT NULL, custom_id TEXT NOT NULL, content_hash TEXT NOT NULL, cache_key TEXT NOT NULL,
    transcript_hash TEXT NOT NULL, inbox_path TEXT, status TEXT NOT NULL, error TEXT,
    prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER, cost REAL, updated TEXT,
    PRIMARY KEY (token, custom_id)
);
CREATE INDEX IF NOT EXISTS inbox_batch_items_hash ON inbox_batch_items (content_hash);
ALTER TABLE calls ADD COLUMN run_id INTEGER;
ALTER TABLE calls ADD COLUMN item TEXT;
CREATE INDEX IF NOT EXISTS calls_run_item ON calls (run_id, item);
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, command TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
    engine TEXT, model TEXT, prompt_version TEXT, status TEXT NOT NULL,
    done INTEGER, skipped INTEGER, failed INTEGER, calls INTEGER, prompt_tokens INTEGER,
    cached_tokens INTEGER, completion_tokens INTEGER, cost REAL, error TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS run_items (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, item TEXT NOT NULL, name TEXT, transcript TEXT,
    note TEXT, status TEXT NOT NULL, detail TEXT, error TEXT, seconds REAL, ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_items_run ON run_items (run_id, item);
CREATE INDEX IF NOT EXISTS run_items_ts ON run_items (ts);
INSERT INTO "extractions" VALUES('87ddd74cd73676f5047e1cb1361d1332db3d93e8948bfea62436eba0c6a57435','eb988baca76cdd62405a443c03ce6c613156b517734c6bbe41532e4dd7bdcf2d','offline','offline','offline-1','{"extraction":{"title":"Website relaunch planning with Northwind","meeting_date":"2026-03-02","note_type":"internal","account":null,"account_category":null,"participants":["Dana Whitfield","Priya Raman","Marcus Oyelaran"],"summary":"Dana Whitfield, Priya Raman and Marcus Oyelaran discussed first, CMS and Thanks. Priya Raman said: “Mobile is now sixty-two percent of your traffic, so we''d like to design mobile-first this time.” Marcus Oyelaran noted: “The checkout page is the worst on mobile; the bounce rate there is around forty percent.” Dana Whitfield explained: “Let''s go with mobile-first for every page, starting with checkout.” Priya Raman added: “On timing, we can deliver the first wireframes in two weeks if we get the brand assets by Friday.” Marcus Oyelaran said: “We''ve been talking about moving to a headless CMS, but nothing is decided yet.” Priya Raman noted: “We''ll schedule a design review for the wireframes on March sixteenth.”","action_items":[{"text":"Send you the brand assets","owner":"Dana Whitfield","due":"2026-03-06","priority":"none","evidence":"I''ll send you the brand assets by Friday."},{"text":"Share the current component library with Priya","owner":"Marcus Oyelaran","due":null,"priority":"none","evidence":"Marcus, can you share the current component library with Priya?"},{"text":"Set up redirects for the few pages that do change","owner":"Marcus Oyelaran","due":null,"priority":"none","evidence":"I''ll set up redirects for the few pages that do change."}],"decisions":[{"text":"Decided to go with mobile-first for every page, starting with checkout.","evidence":"Let''s go with mobile-first for every page, starting with checkout."},{"text":"Decided that the budget stays at forty-five thousand euros for the whole relaunch.","evidence":"We agreed the budget stays at forty-five thousand euros for the whole relaunch, so the CMS choice has to fit in that."},{"text":"Decided to keep the current domain and not rebrand the url structure, to protect search rankings.","evidence":"We decided to keep the current domain and not rebrand the URL structure, to protect search rankings."}],"key_information":["I''ll send you the brand assets by Friday.","I can write up the options with costs by next Wednesday.","We agreed the budget stays at forty-five thousand euros for the whole relaunch, so the CMS choice has to fit in that.","June first is fixed because of the spring catalogue."],"related":[{"name":"CMS","kind":"concept"},{"name":"Priya","kind":"person"}]},"engine":"offline","model":"offline","prompt_version":"offline-1","usage":{"calls":0,"prompt_tokens":0,"cached_tokens":0,"completion_tokens":0,"cost":null}}','2026-11-23T21:49:49+00:00');
INSERT INTO calls (ts, label, model, mode, endpoint, prompt_version, calls, prompt_tokens, cached_tokens, completion_tokens, cost, response, error) VALUES ('2026-03-02T10:00:00+00:00', 'Inbox/old.txt', 'gpt-4.1-mini', 'strict', 'https://api.openai.com/v1', 'p-1', 1, 900, 0, 300, 0.0012, '{}', NULL);
INSERT INTO modes VALUES ('http://127.0.0.1:1/v1|local-model', 'json', '2026-03-02T10:00:00+00:00');
INSERT INTO notes VALUES ('Meetings/2026-03-01 - Old meeting.md', 'eb988b', 'Inbox/old.txt', 'offline', 'offline', 'offline-1', 't-old', NULL, '2026-03-01T09:00:00+00:00', '# Old meeting
');
INSERT INTO inbox_transcripts (content_hash, status, inbox_path, note_path, note_sha, archive_path, attempts, first_seen, updated, done_at) VALUES ('aa11', 'done', 'Inbox/old.txt', 'Meetings/2026-03-01 - Old meeting.md', 'bb22', 'Inbox/_archive/2026-03-01/old.txt', 0, '2026-03-01T09:00:00+00:00', '2026-03-01T09:00:00+00:00', '2026-03-01T09:00:00+00:00');
INSERT INTO inbox_duplicates VALUES ('aa11', 'Inbox/old copy.txt', 'done', 'Inbox/_archive/2026-03-01/old copy.txt', 'Meetings/2026-03-01 - Old meeting.md', '2026-03-01T09:00:00+00:00');
INSERT INTO inbox_batches VALUES ('tok1', 'batch_1', 'file_1', 'collected', 'openai', 'gpt-4.1-mini', 'p-1', 1, '2026-03-01T09:00:00+00:00', '2026-03-01T09:00:00+00:00', NULL);
INSERT INTO inbox_batch_items VALUES ('tok1', 'aa11', 'aa11', 'key1', 'eb988b', 'Inbox/old.txt', 'collected', NULL, 900, 0, 300, 0.0006, '2026-03-01T09:00:00+00:00');
INSERT INTO runs (id, command, started, finished, engine, model, prompt_version, status, done, skipped, failed, calls, prompt_tokens, cached_tokens, completion_tokens, cost, error) VALUES (1, 'inbox', '2026-03-03T10:00:00+00:00', '2026-03-03T10:00:09+00:00', 'openai', 'gpt-4.1-mini', 'p-1', 'failed', 0, 0, 1, 2, 1800, 0, 600, 0.0024, NULL);
INSERT INTO run_items (run_id, item, name, transcript, note, status, detail, error, seconds, ts) VALUES (1, 'Inbox/new.txt', 'new.txt', 'Inbox/new.txt', NULL, 'failed', NULL, 'Inbox/new.txt: the model''s answer was unusable twice', 8.5, '2026-03-03T10:00:09+00:00');
INSERT INTO calls (ts, run_id, item, label, model, mode, endpoint, prompt_version, calls, prompt_tokens, cached_tokens, completion_tokens, cost, response, error) VALUES ('2026-03-03T10:00:02+00:00', 1, 'Inbox/new.txt', 'Inbox/new.txt', 'gpt-4.1-mini', 'strict', 'https://api.openai.com/v1', 'p-1', 1, 900, 0, 300, 0.0012, 'Sure!', 'the answer was not JSON');
INSERT INTO calls (ts, run_id, item, label, model, mode, endpoint, prompt_version, calls, prompt_tokens, cached_tokens, completion_tokens, cost, response, error) VALUES ('2026-03-03T10:00:08+00:00', 1, 'Inbox/new.txt', 'Inbox/new.txt', 'gpt-4.1-mini', 'strict', 'https://api.openai.com/v1', 'p-1', 1, 900, 0, 300, 0.0012, 'Sure!', 'the answer was not JSON');
CREATE TABLE IF NOT EXISTS server_limits (
    endpoint TEXT PRIMARY KEY, context_window INTEGER, token_ratio REAL, slots INTEGER,
    probed INTEGER NOT NULL DEFAULT 0, ts TEXT NOT NULL
);
INSERT INTO server_limits VALUES ('http://127.0.0.1:1/v1|local-model', 4096, 1.2, 1, 1, '2026-03-04T10:00:00+00:00');
PRAGMA user_version = 5;

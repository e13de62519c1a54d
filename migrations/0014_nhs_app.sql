-- The NHS App: the trust's own exclusion flag, the NHS number the Wayfinder API and NHS login look patients up by,
-- when a letter was first listed on an opened appointment (its "Seen" receipt), NHS login's sign-in attempts, and
-- sessions with a shorter idle limit of their own (NHS login's, WF-NFR-18).
ALTER TABLE patients ADD COLUMN nhs_app_excluded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX patients_nhs_number ON patients (nhs_number);
ALTER TABLE letters ADD COLUMN seen_at TEXT;
ALTER TABLE sessions ADD COLUMN idle_seconds INTEGER;

-- One NHS login attempt: the browser holds the state; we keep its keyed hash, the nonce the ID token must carry,
-- the page to land on and the deep link's tracking id (no personal data).
CREATE TABLE nhs_login_attempts (
    id TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    tracking_id TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX nhs_login_attempts_created ON nhs_login_attempts (created_at);

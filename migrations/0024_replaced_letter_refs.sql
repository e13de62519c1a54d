-- The document numbers a letter was filed under before an HL7 MDM^T10 filed it under a new one. A record naming one
-- as its own number again (a T02, a T10's TXA-12, the API's PUT /letters) is refused, naming the letter's number now,
-- rather than making a second letter or putting back the version replaced; a T10 naming one as the document it
-- replaces (TXA-13) replaces the letter it became.
CREATE TABLE replaced_letter_refs (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    ref TEXT NOT NULL,
    letter_id BIGINT NOT NULL REFERENCES letters (id) ON DELETE CASCADE,
    replaced_at TEXT NOT NULL,
    PRIMARY KEY (organisation_id, ref)
);
CREATE INDEX replaced_letter_refs_letter ON replaced_letter_refs (letter_id);

-- The claim statement that last took the job (a fresh value per statement): a claim repeated
-- after its reply was lost recognises the rows its first run took.
alter table jobs add column claim_token uuid;

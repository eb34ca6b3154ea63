-- Sub-province scopes (issue 6): a class may name the city or county (GB/T 2260, six digits)
-- it trains in; a reviewer may be limited to a city (four digits) or county (six digits)
-- inside their province. NULL means the whole province.
ALTER TABLE classes ADD COLUMN region TEXT;
ALTER TABLE reviewers ADD COLUMN region TEXT;

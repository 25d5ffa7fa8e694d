-- Deliveries are claimed in the database, not only in a dispatcher's memory: who claimed one and
-- until when (both NULL: unclaimed). A claim that has lapsed may be taken again; finishing one checks
-- that it is still the finisher's.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN claimed_until REAL;

-- A subscription's URL can change between attempts: each attempt keeps the URL it was sent to, and
-- the delivery the URL of its last one. Attempts made before this went to the delivery's own URL,
-- except those that sent nothing (the event or the subscription was gone).
ALTER TABLE delivery_attempts ADD COLUMN url TEXT;
ALTER TABLE deliveries ADD COLUMN last_url TEXT;
UPDATE delivery_attempts SET url = (SELECT d.url FROM deliveries d WHERE d.id = delivery_attempts.delivery_id)
    WHERE status_code IS NOT NULL
       OR error IS NULL
       OR error NOT IN ('event gone', 'subscription deleted or disabled');
UPDATE deliveries SET last_url = (
    SELECT a.url FROM delivery_attempts a WHERE a.delivery_id = deliveries.id ORDER BY a.id DESC LIMIT 1
) WHERE attempts > 0;

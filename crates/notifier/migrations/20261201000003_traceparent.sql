-- The W3C trace context of each effect's span, sent with the webhook and in
-- the e-mail's headers; absent for effects of changes that carried none.
ALTER TABLE effects ADD COLUMN traceparent text;

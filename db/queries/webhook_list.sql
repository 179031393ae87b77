-- Every subscription, by name.
SELECT
    -- @include webhook_columns
FROM approvald.webhook_subscriptions
ORDER BY name

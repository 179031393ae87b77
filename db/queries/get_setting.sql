SELECT value FROM approvald_settings WHERE name = $1

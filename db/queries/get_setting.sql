SELECT value FROM approvald.settings WHERE name = $1

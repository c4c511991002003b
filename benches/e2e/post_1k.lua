-- wrk script: POST a 1 KiB body (apps:post answers with the length it read).
wrk.method = "POST"
wrk.body = string.rep("a", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"

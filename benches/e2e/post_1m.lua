-- wrk script: POST a 1 MiB body (apps:post answers with the length it read).
wrk.method = "POST"
wrk.body = string.rep("a", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"

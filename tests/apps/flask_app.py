"""A small Flask app: GET, JSON POST, multipart upload, cookies, redirect, streaming."""

import hashlib
import time

from flask import Flask, Response, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.post("/json")
def echo_json():
    data = request.get_json()
    return jsonify(received=data, total=sum(data["numbers"]))


@app.post("/upload")
def upload():
    upload = request.files["file"]
    content = upload.read()
    return jsonify(
        filename=upload.filename,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        note=request.form.get("note"),
    )


@app.get("/set-cookie")
def set_cookie():
    resp = Response("cookie set")
    resp.set_cookie("flavour", "oatmeal")
    resp.set_cookie("session", "abc123", httponly=True)
    return resp


@app.get("/read-cookie")
def read_cookie():
    return jsonify(dict(request.cookies))


@app.get("/old")
def old():
    return redirect(url_for("new"))


@app.get("/new")
def new():
    return "arrived at new"


@app.get("/stream")
def stream():
    def generate():
        for i in range(5):
            yield f"line {i}\n"
            time.sleep(0.3)

    return Response(generate(), mimetype="text/plain")

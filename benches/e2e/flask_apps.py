"""The Flask scenario, apart from apps.py so only this scenario's servers import Flask."""

from flask import Flask, jsonify

flask_app = Flask("bench")


@flask_app.route("/")
def index():
    return jsonify(message="Hello, world!", ok=True, items=[1, 2, 3])


flask_json = flask_app

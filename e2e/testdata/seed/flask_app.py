# The seed's Flask handler (../shared/seed), unchanged but for the line
# breaks its web page lost. The e2e tests run it against the real server.
import hmac
import hashlib
from flask import Flask, request, jsonify

app = Flask(__name__)
WEBHOOK_SECRET = "whsec_your_signing_secret"

def verify_signature(payload, signature):
    expected = hmac.new(
        WEBHOOK_SECRET.encode(),
        payload,
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)

@app.route("/webhooks/attendance", methods=["POST"])
def handle_attendance():
    signature = request.headers.get("X-PunchConnect-Signature")
    if not verify_signature(request.data, signature):
        return jsonify({"error": "Invalid signature"}), 401

    event = request.json
    event_type = event["event_type"]

    if event_type == "attendance.punch":
        employee = event["employee"]["badge_number"]
        direction = event["punch"]["direction"]
        timestamp = event["timestamp"]
        # Insert into your attendance table
        print(f"Employee {employee} punched {direction} at {timestamp}")

    return jsonify({"received": True}), 200

// The seed's Express handler (../shared/seed), unchanged but for the line
// breaks its web page lost. The e2e tests run it against the real server.
const express = require('express');
const crypto = require('crypto');
const app = express();

const WEBHOOK_SECRET = 'whsec_your_signing_secret';

app.post('/webhooks/attendance', express.raw({ type: 'application/json' }), (req, res) => {
  const signature = req.headers['x-punchconnect-signature'];
  const expected = `sha256=${crypto
    .createHmac('sha256', WEBHOOK_SECRET)
    .update(req.body)
    .digest('hex')}`;

  if (!crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) {
    return res.status(401).json({ error: 'Invalid signature' });
  }

  const event = JSON.parse(req.body);

  if (event.event_type === 'attendance.punch') {
    const { badge_number } = event.employee;
    const { direction } = event.punch;
    console.log(`Employee ${badge_number} punched ${direction} at ${event.timestamp}`);
    // Save to your database
  }

  res.json({ received: true });
});

app.listen(3000, () => console.log('Webhook listener running on :3000'));

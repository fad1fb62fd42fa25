"""Email notifications: what the platform sends, through each clinic's email plugin."""

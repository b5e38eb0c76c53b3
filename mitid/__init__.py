"""MitID Erhverv: issuing and renewing Danish OCES3 certificates (filled by the MitID module issue)."""

"""What the tests share apart from fixtures: the processes they start (processes.py) and OpenSSL's
command line as an independent judge (openssl.py)."""

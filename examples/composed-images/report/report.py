"""Application 1: Python from one part, a shell and its tools from another."""
import json
import platform
import subprocess

applets = subprocess.run(["sh", "-c", "ls /opt/tools/bin | wc -l"], capture_output=True, text=True, check=True)
print(json.dumps({"app": "report", "python": platform.python_version(), "tools": int(applets.stdout)}))

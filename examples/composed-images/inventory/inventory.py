"""Application 2: counts what the parts brought, with the tools' du."""
import json
import os
import subprocess

modules = sum(len(f) for _, _, f in os.walk("/usr/lib/python3.11"))
du = subprocess.run(["du", "-sk", "/usr/lib/python3.11"], capture_output=True, text=True, check=True)
print(json.dumps({"app": "inventory", "stdlib_files": modules, "stdlib_kib": int(du.stdout.split()[0])}))

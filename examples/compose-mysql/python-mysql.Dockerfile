# The course's python-mysql.Dockerfile, offline: `python:alpine` and `apk`
# cannot be reached here, so the base is berth-examples/python3 (Debian's
# python3 and mariadb-client, made by ./make-images) and the connector is
# installed from the wheel ./make-images fetched into wheels/.
FROM berth-examples/python3

WORKDIR /app/

COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels \
    mysql-connector-python \
&& rm -rf /tmp/wheels

COPY database.py .

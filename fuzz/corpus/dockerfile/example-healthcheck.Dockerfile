# healthcheck: the course's healthcheck example with busybox httpd in place of
# python's http.server; the container turns healthy once / answers.
#   berth build -t healthcheck_example examples/healthcheck
#   berth run -d --name hc healthcheck_example && sleep 6 && berth ps   # STATUS shows (healthy)
FROM bb AS base

WORKDIR /app/

RUN echo '<h1>served by busybox httpd</h1>' > index.html \
&& true

EXPOSE 8000
CMD ["httpd", "-f", "-p", "8000", "-h", "/app"]
HEALTHCHECK --interval=5s --timeout=3s CMD wget -q -O /dev/null http://localhost:8000/ || exit 1

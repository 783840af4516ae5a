FROM python:alpine as base
WORKDIR /app/
FROM base as download
    RUN apk add --no-cache \
        curl \
    && true
    RUN curl -A "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:59.0) Gecko/20100101 Firefox/59.0" -O "https://x/elev.jpg"
FROM base as production
    COPY --from=download /app/ /app/
    CMD ["python3", "-m", "http.server"]
FROM base as shell
    COPY --from=download /app/ /app/
    RUN apk add --no-cache \
        bash \
    && true
    CMD ["/bin/bash"]

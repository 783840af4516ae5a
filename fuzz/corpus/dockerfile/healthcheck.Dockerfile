FROM python:alpine
WORKDIR /app
HEALTHCHECK --interval=5s --timeout=3s CMD curl --fail http://localhost:8000/ || exit 1
CMD ["python3", "-m", "http.server"]

FROM alpine
ENTRYPOINT ["ls"]
CMD ["--help"]

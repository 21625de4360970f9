"""The web pages commune staff use every day, in French, served by the gateway at `/`.

Server-rendered (Jinja2, gateway/templates) with a little JavaScript; the pages call the same
service RPCs as the API, with the signed-in user as caller."""

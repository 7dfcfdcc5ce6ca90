# What MicroPython runs after boot.py: the client, from app.py (deployed compiled, as
# app.mpy). Your application's objects and sensors go in app.py's build().
import app

app.main()

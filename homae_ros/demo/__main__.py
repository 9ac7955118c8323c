"""`python -m homae_ros.demo`: run the demo clip (`homae_ros.demo.clip`)."""

from homae_ros.demo.clip import main

if __name__ == "__main__":
    raise SystemExit(main())

# Installed as /etc/profile.d/speedrun-venv.sh in the trainer image. KubeRay starts Ray with `bash -lc`, and
# Debian's /etc/profile resets PATH for login shells: put the project's venv back in front, once.
case ":${PATH}:" in
    *:/opt/venv/bin:*) ;;
    *) PATH="/opt/venv/bin:${PATH}" ;;
esac
export PATH

#!/usr/bin/env bash
# Downloads, here, the GL loader libraries (libglvnd's EGL/OpenGL loaders, Vulkan's
# loader) as .deb files into the ignored folder .gl/, for the device machine, where
# benchmarks/gpu/suite.sh unpacks them (dpkg -x into /, then ldconfig) before rendering
# with MUJOCO_GL=egl on the NVIDIA driver. About 0.4 MiB. Needs apt-get (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gl /tmp/amd64/partial
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update >/dev/null
rm -f .gl/*.deb
(cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
du -ch .gl/*.deb | tail -1 | sed 's/total/GL loaders in .gl\//'

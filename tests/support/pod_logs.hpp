// A fake kubelet log tree (/var/log/pods and /var/log/containers), which is
// where oomguard finds pod and container names.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "support/files.hpp"

namespace oomguard::test {

// A fake kubelet log tree: <dir>/pods/<ns>_<name>_<uid>/<container>/0.log and
// <dir>/containers/<pod>_<ns>_<container>-<id>.log symlinks.
class FakePodLogs {
public:
    explicit FakePodLogs(std::string dir) : dir_(std::move(dir)) {
        make_dir(pods_dir());
        make_dir(dir_ + "/containers");
    }
    std::string pods_dir() const { return dir_ + "/pods"; }
    void pod(const std::string& ns, const std::string& name, const std::string& uid) const {
        make_dir(pods_dir() + "/" + ns + "_" + name + "_" + uid);
    }
    // link=false: only the pod's log directory, no containers/ symlink.
    void container(const std::string& ns, const std::string& pod, const std::string& uid,
                   const std::string& name, const std::string& id, bool link = true) const {
        const std::string target =
            pods_dir() + "/" + ns + "_" + pod + "_" + uid + "/" + name + "/0.log";
        write_file(target, "");
        if (link) {
            std::string l = dir_ + "/containers/" + pod + "_" + ns + "_" + name + "-" + id + ".log";
            if (::symlink(target.c_str(), l.c_str()) != 0 && errno != EEXIST)
                throw std::runtime_error("symlink " + l);
        }
    }

private:
    std::string dir_;
};

}  // namespace oomguard::test

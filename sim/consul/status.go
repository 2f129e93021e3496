package consul

import "net/http"

func (s *Server) routeStatus(mux *http.ServeMux) {
	mux.Handle("/v1/status/leader", endpoint(s.serveStatusLeader, http.MethodGet))
	mux.Handle("/v1/status/peers", endpoint(s.serveStatusPeers, http.MethodGet))
}

// serveStatusLeader answers the raft address of the leader: sim's server,
// the only one.
func (s *Server) serveStatusLeader(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	return writeJSON(w, s.LeaderAddr())
}

// serveStatusPeers answers the raft peer set: sim's one server.
func (s *Server) serveStatusPeers(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	return writeJSON(w, []string{s.LeaderAddr()})
}
